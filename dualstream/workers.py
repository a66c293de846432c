"""gunicorn's uvicorn worker, stopping with open streams on every one of gunicorn's paths.

``uvicorn_worker.UvicornWorker`` leaves two of them to a stream that never ends:

- ``--max-requests`` / ``--max-requests-jitter`` (worker recycling): uvicorn leaves its main
  loop with no signal, then waits for every response. dualstream's ``HTTPProtocol``
  (``dualstream/servers.py``) cuts the streams from uvicorn's shutdown of each connection.
- SIGQUIT, which the master sends its workers on SIGINT or SIGQUIT (the quick shutdown):
  the stock worker only sets a flag uvicorn never reads, so streams stay open until the
  master's SIGKILL, and no ``finally`` runs. Here it is the SIGTERM path: every stream
  is cut (its ``retry:`` hint, its ``finally``) and uvicorn shuts down at once.

::

    gunicorn myproject.asgi:application -k dualstream.workers.UvicornWorker \\
        --workers 4 --max-requests 10000 --max-requests-jitter 1000 --timeout 0 --graceful-timeout 10
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any, ClassVar

from uvicorn_worker import UvicornWorker as _UvicornWorker

__all__ = ["UvicornWorker"]


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]  # gunicorn ships no types
    """``uvicorn_worker.UvicornWorker`` with dualstream's HTTP protocol and a SIGQUIT that ends streams."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        **_UvicornWorker.CONFIG_KWARGS,
        "http": "dualstream.servers:HTTPProtocol",
    }

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGQUIT (uvicorn_worker's only use of it): go the way of SIGTERM, through uvicorn's own handler.

        uvicorn handles SIGTERM with ``signal.signal()``, and dualstream chains its cut in front;
        raising it here, from the event loop, runs both. uvicorn re-raises SIGTERM once it has
        shut down, so the worker ends as it does on the master's SIGTERM.
        """
        super().handle_exit(sig, frame)
        signal.raise_signal(signal.SIGTERM)
