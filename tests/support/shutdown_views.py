"""Streams for tests/e2e/test_shutdown.py, served by a real server process (``tests.support.shutdown_settings``).

Each producer writes one line to stderr when its ``finally`` runs: the test reads the server's log
after the process has exited, when no endpoint can be asked any more.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from dualstream import DualModeView, Event
from tests.support.serverprocess import FINALLY


def finally_ran() -> None:
    """Tell the test, with this process's clock: one write, as worker processes share the pipe."""
    sys.stderr.write(f"{time.time():.6f} {FINALLY}\n")


class Endless(DualModeView):
    """One event, then another every second, for ever."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            n = 0
            while True:
                yield Event({"n": n}, id=str(n))
                n += 1
                await asyncio.sleep(1.0)
        finally:
            finally_ran()


class Ticks(DualModeView):
    """An event every 0.1 s, for ever: each must reach the client on its own, not buffered."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            n = 0
            while True:
                yield {"n": n}
                n += 1
                await asyncio.sleep(0.1)
        finally:
            finally_ran()


class Quiet(DualModeView):
    """One event, then silence: only keep-alive comments flow (heartbeat 0.1 s)."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            yield {"n": 0}
            await asyncio.Event().wait()
        finally:
            finally_ran()


def plain(request: HttpRequest) -> HttpResponse:
    """A request that is not a stream: none may fail while a worker stops and is replaced."""
    return HttpResponse("ok")


urlpatterns = [
    path("endless/", Endless.as_view(heartbeat=5.0)),
    path("ticks/", Ticks.as_view()),
    path("quiet/", Quiet.as_view(heartbeat=0.1)),
    path("idle/", Quiet.as_view(heartbeat=0.5)),  # a thousand at once: 2,000 keep-alives a second
    path("plain/", plain),
]
