"""The streams open in this process, and ending them all when the server stops.

No ASGI server tells an application that it is shutting down while a
streaming response runs: uvicorn (alone, with ``--workers``, or as gunicorn's
``UvicornWorker``) stops accepting, then waits for every response to finish,
which an endless stream never does. So on the first stream dualstream chains
a handler in front of the server's own SIGTERM and SIGINT handlers: it cuts
every open stream (SSE: a last ``retry:`` field, no ``done``, so browsers
reconnect to another worker and resume), then calls the server's handler,
which goes on as before. Only a Python-level handler already installed by
the server is chained, never replaced; ``DUALSTREAM["HANDLE_SHUTDOWN"] =
False`` opts out, and ``end_streams()`` is the same cut for servers that
offer a shutdown hook of their own.

Under daphne, Twisted's reactor cancels every application and closes every
connection as soon as it stops, whatever is still to be written: there the
signal is passed on once the streams' last writes are out. A hypercorn
worker process gets no signal: its main process sets an event, which
dualstream/hypercorn_worker.py watches. Servers that stop without a signal
(a worker at its request limit) are dualstream/servers.py's and
dualstream/workers.py's.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from . import conf, hypercorn_worker
from .pump import EndReason, Pump
from .threads import in_request_task

_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Seconds a stopping server waits, at most, for the streams' last writes. Twisted's HTTP/2 writes one
# frame per connection per turn of its loop: 1,000 streams on 10 connections took 1.3-2.0 s on a
# loaded 2-core machine (tests/e2e/test_servers_idle.py), at the edge of the 2 s this was before.
SEND_GRACE = 4.0
_Handler = Callable[[int, FrameType | None], Any]


class Streams:
    """The pumps open in this process, on whichever event loops they run."""

    def __init__(self) -> None:
        self._open: set[Pump] = set()
        # The tasks sending streams, until they are done, each with its pump.
        self._sending: dict[asyncio.Task[Any], Pump] = {}
        self._lock = threading.Lock()  # WSGI streams run on loops of their own, in other threads
        self.stopping = False
        self._chained = False

    def __len__(self) -> int:
        return len(self._open)

    def add(self, pump: Pump) -> None:
        """Hold ``pump``; called by ``respond.stream_response()``, in the task of Django's handler that sends the response.

        Once that task is done, sent or not (cancelled in a middleware, say), nobody reads the stream on: it ends.
        """
        task = asyncio.current_task() if in_request_task() else None
        with self._lock:
            self._open.add(pump)
            if task is not None:
                self._sending[task] = pump
        if task is not None:
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[Any]) -> None:
        with self._lock:
            pump = self._sending.pop(task)
        pump.end(EndReason.CLIENT_GONE)

    def discard(self, pump: Pump) -> None:
        with self._lock:
            self._open.discard(pump)

    def end_all(self, reason: EndReason = EndReason.SHUTDOWN) -> None:
        """Cut every open stream, from any thread; new streams are refused from now on."""
        self.stopping = True
        with self._lock:
            pumps = list(self._open)
        for pump in pumps:
            pump.end(reason)

    async def sent(self, timeout: float) -> None:
        """Return once the streams on this loop have been handed to the server to the last byte.

        A pump ends before Django has sent its last chunk; the task of its request ends after.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            tasks = {task for task in self._sending if task.get_loop() is loop}
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def chain_shutdown_handlers(self) -> None:
        """Put ``end_all()`` in front of the server's signal handlers, once, from the loop's main thread.

        In a hypercorn worker process, which gets no signal, ``end_all()`` follows its main process's stop instead.
        """
        if self._chained or threading.current_thread() is not threading.main_thread():
            return
        self._chained = True
        if not conf.get("HANDLE_SHUTDOWN"):
            return
        loop = asyncio.get_running_loop()
        for signum in _SIGNALS:
            previous = signal.getsignal(signum)
            if callable(previous):  # a server's handler; SIG_DFL and SIG_IGN are left alone
                signal.signal(signum, self._chained_handler(loop, previous))
        event = hypercorn_worker.shutdown_event()
        if event is not None:  # no signal reaches a hypercorn worker: its main process sets this
            hypercorn_worker.watch(loop, event, lambda: self.end_all(EndReason.SHUTDOWN))

    async def _reactor_sent(self, reactor: Any) -> None:
        """The streams sent, then written out: Twisted's HTTP/2 writes one frame per reactor turn, each
        turn a call due at once (``callLater(0)``), so turns are let run while such a call is pending."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEND_GRACE
        await self.sent(timeout=SEND_GRACE)
        while loop.time() < deadline and any(call.getTime() <= reactor.seconds() for call in reactor.getDelayedCalls()):
            await asyncio.sleep(0)

    def _chained_handler(self, loop: asyncio.AbstractEventLoop, previous: _Handler) -> _Handler:
        reactor = sys.modules.get("twisted.internet.reactor")  # daphne's, when this process runs one
        if reactor is None or not getattr(reactor, "running", False):

            def handler(signum: int, frame: FrameType | None) -> Any:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self.end_all, EndReason.SHUTDOWN)
                return previous(signum, frame)

            return handler

        # Twisted's stop cancels every application at once and closes every connection once its
        # "before shutdown" triggers are done, whatever is still queued: the streams' last writes were
        # lost (at 400 streams, all of them). So the reactor hears of the signal once they are out.
        def then_previous(signum: int) -> None:
            self.end_all(EndReason.SHUTDOWN)
            done = asyncio.ensure_future(self._reactor_sent(reactor))
            done.add_done_callback(lambda _: previous(signum, None))

        def deferring_handler(signum: int, frame: FrameType | None) -> Any:
            if loop.is_closed():
                return previous(signum, frame)
            loop.call_soon_threadsafe(then_previous, signum)
            return None

        return deferring_handler


#: This process's streams.
streams = Streams()


def end_streams() -> None:
    """Cut every stream open in this process, as at shutdown; call it from a server's own shutdown hook."""
    streams.end_all(EndReason.SHUTDOWN)
