"""uvicorn's HTTP protocol, ending every open stream when the server stops for any reason.

A signal is not the only way uvicorn stops: ``--limit-max-requests`` (and gunicorn's
``--max-requests``, which ``UvicornWorker`` passes on) makes the server leave its main loop
on its own, with no signal an application could see. It then waits for every response to
end, which an endless stream never does: the worker accepts nothing more and never exits.
On every path, though, uvicorn's ``Server.shutdown()`` calls ``shutdown()`` on each open
connection, and that method belongs to the protocol class named by ``--http``::

    uvicorn myproject.asgi:application --http dualstream.servers:HTTPProtocol \\
        --workers 4 --limit-max-requests 10000 --lifespan off

This subclass of uvicorn's own protocol (httptools when installed, as ``--http auto``
chooses, else h11) cuts every stream of the process there, then lets uvicorn go on: the
streams end with their ``retry:`` hint, the connections close and the worker exits.
gunicorn's ``dualstream.workers.UvicornWorker`` uses it.
"""

from __future__ import annotations

from .lifecycle import streams

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Protocol
except ImportError:  # pragma: no cover - uvicorn without httptools: h11, as --http auto would choose
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Protocol  # type: ignore[assignment]

__all__ = ["HTTPProtocol"]

READ_GRACE = 0.05  # seconds a connection accepted as the server stops has to deliver its request


class HTTPProtocol(_Protocol):
    """uvicorn's HTTP/1.1 protocol; the server's shutdown of a connection first cuts every stream."""

    def shutdown(self) -> None:
        if not streams.stopping:  # once per process, not once per connection
            streams.end_all()
        if self.cycle is None and not self.transport.is_closing():
            # Accepted just before the server stopped, its request still on its way: closed now, it
            # would be reset unanswered. Its request is read first, answered, then the connection closed.
            self.loop.call_later(READ_GRACE, super().shutdown)
            return
        super().shutdown()
