"""QuerySetView and aiterate() in this process: the key selected, writes coalesced or immediate, aiterate's
chunks, each row's event and ``serialize()``. Every row in every mode over HTTP is tests/e2e/test_querysets.py.

Tests parametrized with ``alias`` (tests/support/databases.py) run on SQLite, and on PostgreSQL when
``TEST_POSTGRES_URL`` names a server; that variant is end to end.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.asgi import get_asgi_application
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from dualstream import Event, QuerySetView, aiterate, conf, pump
from tests.models import Sample
from tests.support.asgi import http_scope
from tests.support.databases import on_each_database, seed
from tests.support.queryset_views import FIELDS, gates


def test_the_key_is_selected_even_when_fields_leave_it_out(rf) -> None:
    class SensorsOnly(QuerySetView):
        queryset = Sample.objects.all()
        fields = ["sensor"]

    view = SensorsOnly()
    view.setup(rf.get("/"))
    assert view.stream_queryset().query.values_select == ("sensor", "id")


def test_a_view_without_a_queryset_says_what_it_needs(rf) -> None:
    view = QuerySetView()
    view.setup(rf.get("/"))
    with pytest.raises(ImproperlyConfigured, match="'queryset' attribute or a get_queryset"):
        view.get_queryset()


def _serve(path: str, query: str, on_body: Callable[[bytes], None] = lambda body: None) -> list[bytes]:
    """Run one GET through Django's ASGI handler with a scripted server; the non-empty ``http.response.body`` sends."""
    bodies: list[bytes] = []

    async def scenario() -> None:
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.Event().wait()  # the client stays until the response is complete
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                bodies.append(message["body"])
                on_body(message["body"])

        await asyncio.wait_for(get_asgi_application()(http_scope(path, query), receive, send), 30)

    asyncio.run(scenario())
    return bodies


@pytest.mark.django_db(transaction=True)
def test_rows_are_coalesced_into_few_writes_when_the_producer_is_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pump, "monotonic", lambda: 0.0)  # rows rendered in no time: never a turn given early
    expected = seed("default", 3000)
    chunk = 1000
    bodies = _serve("/qs/default/rows/", f"format=ndjson&chunk={chunk}")
    data = b"".join(bodies)
    assert [json.loads(line) for line in data.splitlines()] == expected
    # The pump writes when its buffer fills, or when produce() waits (for the next chunk from the database).
    writes = len(data) // conf.get("BUFFER_SIZE") + -(-len(expected) // chunk)
    # Django's ASGI handler sends a body in pieces of at most 64 KiB: a full buffer, just over that, is two sends.
    assert len(bodies) <= 2 * writes < len(expected) / 100


@pytest.mark.django_db(transaction=True)
def test_each_row_is_written_at_once_when_the_producer_is_slow() -> None:
    expected = seed("default", 6)
    token = uuid.uuid4().hex
    gates[token] = asyncio.Event()
    # Each row waits for the write of the one before it: a pump that held a row back for company would hang here.
    bodies = _serve("/qs/default/gated/", f"format=ndjson&gate={token}", on_body=lambda body: gates[token].set())
    assert [json.loads(body) for body in bodies] == expected


@on_each_database
def test_aiterate_yields_every_row_in_chunks_and_closes_early(alias: str) -> None:
    expected = Sample.objects.using(alias).order_by("id")
    seed(alias, 25)

    async def scenario() -> tuple[list[Sample], list[Sample]]:
        try:
            everything = [row async for row in aiterate(expected, chunk_size=4)]
            async with aclosing(aiterate(expected, chunk_size=4)) as rows:
                first = [row async for _, row in azip(range(6), rows)]
            return everything, first
        finally:
            await sync_to_async(connections.close_all)()  # this executor thread's connections

    everything, first = asyncio.run(scenario())
    assert everything == list(expected)
    assert first == list(expected[:6])


async def azip(numbers: range, rows: Any) -> Any:
    for n in numbers:
        yield n, await anext(rows)


def test_aiterate_refuses_a_chunk_size_below_one() -> None:
    async def scenario() -> None:
        async with aclosing(aiterate(Sample.objects.all(), chunk_size=0)) as rows:
            await anext(rows)

    with pytest.raises(ValueError, match="chunk_size"):
        asyncio.run(scenario())


class _ById(QuerySetView):
    queryset = Sample.objects.all()
    fields = FIELDS


class _ByTime(_ById):
    key = "taken_at"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("view_class", "query", "keyed"),
    [(_ById, "format=sse", "id"), (_ByTime, "format=sse", "taken_at"), (_ById, "format=ndjson", None)],
)
def test_in_sse_each_row_is_an_event_with_its_key_as_id_whatever_the_key(
    rf: Any, view_class: type, query: str, keyed: str | None
) -> None:
    seed("default", 3)
    rows = list(Sample.objects.order_by(keyed or "id").values(*FIELDS))
    request = rf.get(f"/?{query}")
    view = view_class()
    view.setup(request)

    async def produced() -> list[Any]:
        async with aclosing(view.produce(request)) as items:
            return [item async for item in items]

    items = async_to_sync(produced)()
    if keyed is None:
        assert items == rows  # no ids outside SSE: the rows themselves
    else:
        key = (lambda row: row["id"]) if keyed == "id" else (lambda row: str(row[keyed]))
        assert items == [Event(row, id=key(row)) for row in rows]
        assert all(type(item) is Event and type(item.id) is type(key(rows[0])) for item in items)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["subclass", "as_view"])
def test_serialize_is_called_whether_overridden_or_given_to_as_view(rf: Any, how: str) -> None:
    seed("default", 3)

    def serialize(row: dict[str, Any]) -> Any:
        return {"n": row["id"]}

    if how == "subclass":
        view: QuerySetView = type("Serialized", (_ById,), {"serialize": lambda self, row: serialize(row)})()
    else:
        view = _ById(serialize=serialize)  # what as_view(serialize=...) does with its initkwargs
    request = rf.get("/?format=ndjson")
    view.setup(request)

    async def produced() -> list[Any]:
        async with aclosing(view.produce(request)) as items:
            return [item async for item in items]

    assert async_to_sync(produced)() == [{"n": pk} for pk in Sample.objects.order_by("id").values_list("id", flat=True)]
