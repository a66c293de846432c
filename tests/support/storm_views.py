"""Producers for tests/e2e/test_storm.py, served by uvicorn in a subprocess (``tests.support.storm_settings``).

Every producer here counts its start and its ``finally``; ``report/`` tells the test those counts, the
server loop's task count and its thread count, so a test outside the process can see whether anything
was orphaned. With ``?probe=<token>`` a producer also keeps a ``Record`` (times on the system-wide
monotonic clock, which the test process reads too) that ``report/?probe=<token>`` returns.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import asdict, dataclass
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path

import dualstream
from dualstream import DualModeView
from dualstream.broadcast import TopicView, apublish
from dualstream.broadcast.backends import get_fanout
from project.demo.exports import ReadingExport

from .probes import exit_recorded


@dataclass
class Record:
    """One producer's life."""

    started_at: float
    finished_at: float | None = None  # when its finally ran
    produced: int = 0
    exit: str = ""  # "returned", "cancelled", "closed" (GeneratorExit), or an exception's name


class Tally:
    """Producers started and finished in this process; records of the probed ones."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self.records: dict[str, Record] = {}

    def start(self, probe: str | None) -> Record:
        self.started += 1
        record = Record(started_at=time.monotonic())
        if probe:
            self.records[probe] = record
        return record

    def finish(self, record: Record) -> None:
        record.finished_at = time.monotonic()
        self.finished += 1


tally = Tally()


class Tracked(DualModeView):
    """``produce()`` is ``items()``, counted in ``tally``; ``?pace=`` seconds pass after each item."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        record = tally.start(request.GET.get("probe"))
        pace = float(request.GET.get("pace", 0))
        try:
            with exit_recorded(record):
                async with aclosing(self.items(request, *args, **kwargs)) as items:
                    async for item in items:
                        record.produced += 1
                        yield item
                        if pace:
                            await asyncio.sleep(pace)
        finally:
            tally.finish(record)

    def items(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        """The items; by default the next class's ``produce()`` (``Rows``: the demo's export)."""
        return super().produce(request, *args, **kwargs)  # type: ignore[misc,no-any-return]


def _limit(request: HttpRequest) -> float:
    return float(request.GET.get("n", "inf"))


class Endless(Tracked):
    """An item every ``?interval=`` seconds (default 0.01); ``?n=`` items, endless by default."""

    async def items(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        interval, n, i = float(request.GET.get("interval", 0.01)), _limit(request), 0
        while i < n:
            if i:
                await asyncio.sleep(interval)
            yield {"i": i}
            i += 1


class SlowStart(Tracked):
    """The first item after ``?delay=`` seconds (default 0.5), then one every 0.1 s, endless."""

    async def items(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(float(request.GET.get("delay", 0.5)))
        i = 0
        while True:
            yield {"i": i}
            i += 1
            await asyncio.sleep(0.1)


class Flood(Tracked):
    """Items as fast as the pump takes them (no await of its own): only backpressure stops it."""

    async def items(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        payload, i = "x" * 100, 0
        while True:
            yield {"i": i, "payload": payload}
            i += 1


class Rows(Tracked, ReadingExport):
    """The demo's export (a ``QuerySetView`` over ``Reading``), counted."""


class Topic(Tracked, TopicView):
    """The broadcast topic "storm" (``storm_settings``: on Redis where the suite has one), counted."""

    topic = "storm"


#: Publishes to "storm" every 10 ms for the server's life; started by the first report, so the baseline counts it.
_publisher: list[asyncio.Task[None]] = []


async def _publish_forever() -> None:
    n = 0
    while True:
        await apublish("storm", {"n": n})
        n += 1
        await asyncio.sleep(0.01)


async def report(request: HttpRequest) -> JsonResponse:
    """The counts, this loop's tasks and threads; ``?probe=``'s record; ``?collect=1`` runs the GC first.

    Collecting first makes a producer left to the garbage collector show now (its finalizer runs,
    "Task was destroyed" is logged) rather than at some later collection.
    """
    if request.GET.get("collect"):
        gc.collect()
    if not _publisher:
        _publisher.append(asyncio.create_task(_publish_forever()))
    probe = tally.records.get(request.GET.get("probe", ""))
    return JsonResponse(
        {
            "started": tally.started,
            "finished": tally.finished,
            "tasks": len(asyncio.all_tasks()),
            "threads": threading.active_count(),
            "topics": len(get_fanout().topics()),  # topics this process still follows
            "now": time.monotonic(),
            "probe": asdict(probe) if probe else None,
            "dualstream": dualstream.__file__,
        }
    )


urlpatterns = [
    path("endless/", Endless.as_view()),
    path("endless-streamed/", Endless.as_view(batch_streaming=True)),
    path("slow/", SlowStart.as_view()),
    path("flood/", Flood.as_view()),
    path("flood-streamed/", Flood.as_view(batch_streaming=True)),
    path("rows/", Rows.as_view(batch_streaming=False, chunk_size=500)),
    path("rows-streamed/", Rows.as_view(batch_streaming=True, chunk_size=500)),
    path("topic/", Topic.as_view(heartbeat=0.5)),
    path("topic-recent/", Topic.as_view(heartbeat=0.5, recent=20)),
    path("report/", report),
]
