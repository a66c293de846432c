"""hypercorn's worker processes: hearing the main process stop them.

hypercorn's default command (any ``--workers`` but 0) serves the application in worker
processes started with multiprocessing's spawn. On SIGTERM, SIGINT or SIGHUP the main process
sets a multiprocessing ``Event``, which each worker polls every 0.1 s; no signal reaches the
worker. The worker then stops accepting, waits up to ``--graceful-timeout`` (3 s) for its
responses to end, and cancels those that did not: every open stream was cut without its
``retry:`` hint, and over HTTP/1.1 without the end of its chunked body.

That event reaches the worker as its process target's ``shutdown_event`` keyword argument,
which multiprocessing keeps on the process object (``_kwargs``). ``watch()`` polls it as
hypercorn does, from the loop of the first stream, and calls back once it is set. Only
``is_set()`` is used: a multiprocessing ``Condition`` wait that a killed worker left behind
would block the main process's next ``set()``. If a later hypercorn starts its workers
differently, nothing is found and a warning says so.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import multiprocessing.synchronize
from collections.abc import Callable

__all__ = ["shutdown_event", "watch"]

logger = logging.getLogger("dualstream")

POLL = 0.1  # seconds between two looks at the event: hypercorn's own pace
_WORKER_MODULE = "hypercorn.asyncio.run"  # asyncio_worker, uvloop_worker: hypercorn 0.11 to 0.18 (0.18 tested)


def shutdown_event() -> multiprocessing.synchronize.Event | None:
    """The event by which hypercorn's main process stops this worker process; None if this is none."""
    process = multiprocessing.current_process()
    target = getattr(process, "_target", None)
    if getattr(target, "__module__", None) != _WORKER_MODULE:
        return None
    event = getattr(process, "_kwargs", {}).get("shutdown_event")
    if not isinstance(event, multiprocessing.synchronize.Event):
        logger.warning(
            "dualstream found no shutdown event in this hypercorn worker: at shutdown its streams will be "
            "cut without a retry: hint. Serve with hypercorn -w 0 (docs/deployment.md)."
        )
        return None
    return event


def watch(loop: asyncio.AbstractEventLoop, event: multiprocessing.synchronize.Event, stop: Callable[[], None]) -> None:
    """Call ``stop`` on ``loop`` once ``event`` is set."""

    def look() -> None:
        if event.is_set():
            stop()
        else:
            loop.call_later(POLL, look)

    loop.call_later(POLL, look)
