"""QuerySetView endpoints for tests/test_querysets*.py, on the database alias named in the URL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connections
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import path

from dualstream import QuerySetView
from tests.models import Sample

FIELDS = ["id", "sensor", "taken_at", "value"]


class RowsView(QuerySetView):
    """The samples on ``<alias>``; ``?chunk=`` sets ``chunk_size``, ``?fail_at=<id>`` fails on that row."""

    fields = FIELDS

    @property
    def chunk_size(self) -> int:  # type: ignore[override]
        return int(self.request.GET.get("chunk", 2000))

    def get_queryset(self) -> QuerySet[Any, Any]:
        return Sample.objects.using(self.kwargs["alias"])

    def serialize(self, row: dict[str, Any]) -> Any:
        if str(row["id"]) == self.request.GET.get("fail_at"):
            raise RuntimeError("serialization failed")
        return row


#: Gates for ``GatedRowsView``, by ``?gate=``: each row waits for its gate to open (tests open it).
gates: dict[str, asyncio.Event] = {}


class GatedRowsView(RowsView):
    """With ``?gate=``, a producer slower than any client: after each row it waits for ``gates[gate]``, then shuts it."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        gate = gates.get(request.GET.get("gate", ""))
        async with aclosing(super().produce(request, *args, **kwargs)) as items:
            async for item in items:
                yield item
                if gate is not None:
                    await gate.wait()
                    gate.clear()


@dataclass
class CursorReport:
    """What a ``CursorWatchView`` saw of its own database session."""

    during: list[tuple[str, bool]] | None = None  # (name, is_holdable) of open cursors, at the first row
    after: list[tuple[str, bool]] | None = None  # the same once produce() has ended
    backend_pid: int | None = None
    finished: threading.Event = field(default_factory=threading.Event)


reports: dict[str, CursorReport] = {}


def _session(alias: str) -> tuple[list[tuple[str, bool]], int]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT name, is_holdable FROM pg_cursors")
        cursors = [tuple(row) for row in cursor.fetchall()]
        cursor.execute("SELECT pg_backend_pid()")
        return cursors, cursor.fetchone()[0]  # type: ignore[return-value]


class CursorWatchView(GatedRowsView):
    """Reports its session's cursors (PostgreSQL's pg_cursors) under ``?probe=``: at the first row and at the end.

    pg_cursors lists only the current session's cursors, so the query runs where the export's
    own queries run: in the request's database thread, on the same connection.
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        report = reports.setdefault(request.GET["probe"], CursorReport())
        session = sync_to_async(_session)
        try:
            async with aclosing(super().produce(request, *args, **kwargs)) as items:
                async for item in items:
                    if report.during is None:
                        report.during, report.backend_pid = await session(kwargs["alias"])
                    yield item
        finally:
            report.after, _ = await session(kwargs["alias"])
            report.finished.set()


urlpatterns = [
    path("<str:alias>/rows/", RowsView.as_view()),
    path("<str:alias>/rows-streamed/", RowsView.as_view(batch_streaming=True)),
    path("<str:alias>/rows-desc/", RowsView.as_view(key="-id")),
    path("<str:alias>/watched/", CursorWatchView.as_view()),
    path("<str:alias>/gated/", GatedRowsView.as_view()),
]
