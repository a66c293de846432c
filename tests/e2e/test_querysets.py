"""QuerySetView over HTTP from uvicorn: every row in every mode, resumption by key, failures, memory; on
PostgreSQL, server-side cursors and connections.

Tests parametrized with ``alias`` run on SQLite, and on PostgreSQL when ``TEST_POSTGRES_URL`` names a
server (tests/support/settings.py then adds the "postgres" alias); the PostgreSQL-only tests skip without it.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
import uuid
from contextlib import aclosing
from itertools import islice
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from httpx_sse import connect_sse

from dualstream import aiterate
from dualstream.testing import fetch_stream
from tests.models import Sample
from tests.support.databases import BOTH, NO_POSTGRES, POSTGRES, on_each_database, seed, wait_for_postgres
from tests.support.queryset_views import gates, reports


def read(http: httpx.Client, url: str) -> tuple[list[Any], list[str | int | None]]:
    """The items at ``url`` in the mode its query asks for, and (in SSE) each item's event id; it must end complete."""
    received = fetch_stream(url, client=http)
    assert (received.status, received.end) == (200, "done"), received
    return received.items, received.ids if received.content_type == "text/event-stream" else []


# Every mode, every row ------------------------------------------------------------------


@on_each_database
@pytest.mark.parametrize(
    "url",
    ["rows/?format=json", "rows-streamed/?format=json", "rows/?format=ndjson", "rows/?stream=1"],
    ids=["json-buffered", "json-streamed", "ndjson", "sse"],
)
def test_every_mode_returns_every_row_in_order(http: httpx.Client, alias: str, url: str) -> None:
    expected = seed(alias, 100)
    items, ids = read(http, f"/qs/{alias}/{url}&chunk=7")
    assert items == expected
    if "stream=1" in url:
        assert ids == [str(row["id"]) for row in expected]  # each event's id is its row's key


@on_each_database
@pytest.mark.parametrize("chunk", [1, 10, 49, 50, 51])
def test_chunk_boundaries_lose_and_repeat_nothing(http: httpx.Client, alias: str, chunk: int) -> None:
    expected = seed(alias, 50)
    assert read(http, f"/qs/{alias}/rows/?format=ndjson&chunk={chunk}")[0] == expected


@pytest.mark.django_db(transaction=True)
def test_an_empty_table_is_an_empty_answer_in_every_mode(http: httpx.Client) -> None:
    for query in ("format=json", "format=ndjson", "stream=1"):
        assert read(http, f"/qs/default/rows-streamed/?{query}")[0] == []


# Resumption -----------------------------------------------------------------------------


@on_each_database
def test_a_reconnect_with_last_event_id_continues_after_that_row(http: httpx.Client, alias: str) -> None:
    expected = seed(alias, 60)
    with connect_sse(http, "GET", f"/qs/{alias}/rows/?stream=1&chunk=5") as source:
        first = list(islice(source.iter_sse(), 17))
    # The client left mid-stream; like EventSource, it reconnects with the last id it saw.
    with connect_sse(
        http, "GET", f"/qs/{alias}/rows/?stream=1&chunk=5", headers={"Last-Event-ID": first[-1].id}
    ) as source:
        rest = [event for event in source.iter_sse() if event.event == "message"]
    assert [json.loads(e.data) for e in first + rest] == expected  # no gap, no duplicate


@on_each_database
def test_other_modes_resume_with_the_last_event_id_parameter(http: httpx.Client, alias: str) -> None:
    expected = seed(alias, 30)
    after = expected[11]["id"]
    assert read(http, f"/qs/{alias}/rows/?format=ndjson&lastEventId={after}")[0] == expected[12:]
    assert read(http, f"/qs/{alias}/rows-streamed/?format=json&lastEventId={after}")[0] == expected[12:]


@on_each_database
def test_a_descending_key_streams_and_resumes_in_descending_order(http: httpx.Client, alias: str) -> None:
    expected = seed(alias, 30)[::-1]
    items, ids = read(http, f"/qs/{alias}/rows-desc/?stream=1&chunk=4")
    assert items == expected and ids == [str(row["id"]) for row in expected]
    after = expected[9]["id"]
    assert read(http, f"/qs/{alias}/rows-desc/?format=ndjson&lastEventId={after}")[0] == expected[10:]


@pytest.mark.django_db(transaction=True)
def test_a_last_event_id_that_is_not_a_key_is_a_400(http: httpx.Client) -> None:
    seed("default", 3)
    response = http.get("/qs/default/rows/?stream=1", headers={"Last-Event-ID": "not-a-number"})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Cannot resume after 'not-a-number': it is not a valid id."


# Batch: streamed and buffered -----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failure_midway_leaves_a_streamed_batch_unterminated_and_is_logged(http: httpx.Client, server_errors) -> None:
    expected = seed("default", 40)
    fail_at = expected[25]["id"]
    response = http.get(f"/qs/default/rows-streamed/?chunk=7&fail_at={fail_at}")
    assert response.status_code == 200  # the headers had gone: the status cannot change any more
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)  # so no client can take the document for complete
    assert json.loads(response.text + "]}") == {"items": expected[:25]}
    assert [r.getMessage() for r in server_errors()] == ["Error while streaming: /qs/default/rows-streamed/"]


@pytest.mark.django_db(transaction=True)
def test_a_failure_midway_in_the_buffered_batch_is_a_500(http: httpx.Client, server_errors) -> None:
    expected = seed("default", 40)
    response = http.get(f"/qs/default/rows/?chunk=7&fail_at={expected[25]['id']}")
    assert response.status_code == 500
    assert response.json() == {"error": {"status": 500, "message": "Internal Server Error"}}
    assert len(server_errors()) == 1


# Memory ---------------------------------------------------------------------------------


def _peak_growth(http: httpx.Client, url: str) -> int:
    """Peak traced memory (this process: the live server too) while ``url`` is read and dropped chunk by chunk."""
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with http.stream("GET", url) as response:
        for _ in response.iter_raw():
            pass
    return tracemalloc.get_traced_memory()[1] - current


@pytest.mark.django_db(transaction=True)
def test_streaming_memory_does_not_grow_with_the_number_of_rows(http: httpx.Client) -> None:
    # Both sizes past the first chunks: at the peak, the chunks in flight (the pump's buffer, the server's
    # and the kernel's) are the same for both. From 1,000 rows (two chunks) the peak still grew with the
    # size, 231-255 KB to 8,000 rows against this 256 KiB bound: a flaky comparison, not a leak.
    small, large = 2_000, 8_000
    queries = ["format=ndjson", "stream=1", "format=json"]
    seed("default", small)
    _peak_growth(http, "/qs/default/rows-streamed/?format=ndjson&chunk=500")  # first use: imports, caches
    tracemalloc.start()
    try:
        flat_small = {q: _peak_growth(http, f"/qs/default/rows-streamed/?{q}&chunk=500") for q in queries}
        buffered_small = _peak_growth(http, "/qs/default/rows/?format=json&chunk=500")
        seed("default", large)
        flat_large = {q: _peak_growth(http, f"/qs/default/rows-streamed/?{q}&chunk=500") for q in queries}
        buffered_large = _peak_growth(http, "/qs/default/rows/?format=json&chunk=500")
    finally:
        tracemalloc.stop()
    # The control: buffering grows with the rows, so the measurement sees growth where there is some.
    assert buffered_large > 2 * buffered_small
    for query in queries:  # 4x the rows, and not 256 KiB more: no row outlives its chunk
        assert flat_large[query] < flat_small[query] + 256 * 1024, (query, flat_small, flat_large)


# aiterate() -----------------------------------------------------------------------------


@pytest.mark.skipif(not POSTGRES, reason=NO_POSTGRES)
@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_aiterate_closes_its_cursor_in_the_database_thread_when_closed_early(cursor_closes: list[bool]) -> None:
    seed("postgres", 20)

    async def scenario() -> list[tuple[str, bool]]:
        try:
            async with aclosing(aiterate(Sample.objects.using("postgres").order_by("id"), chunk_size=4)) as rows:
                await anext(rows)
            return await sync_to_async(_open_cursors)()  # the same thread, the same session
        finally:
            await sync_to_async(connections.close_all)()

    assert asyncio.run(scenario()) == []
    assert cursor_closes == [False]


# PostgreSQL: server-side cursors and connections ------------------------------------------


def _open_cursors() -> list[tuple[str, bool]]:
    """This thread's session's cursors (pg_cursors shows no other session's)."""
    with connections["postgres"].cursor() as cursor:
        cursor.execute("SELECT name, is_holdable FROM pg_cursors")
        return [tuple(row) for row in cursor.fetchall()]


def _pg_sessions() -> list[tuple[int, str]]:
    """(pid, state) of the other sessions on the PostgreSQL test database."""
    with connections["postgres"].cursor() as cursor:
        cursor.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [tuple(row) for row in cursor.fetchall()]


@pytest.fixture
def cursor_closes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each server-side cursor closed in this process: was it closed on an event loop's thread?

    The loop's thread must never do it: it would block every stream on a database round trip,
    on a connection that belongs to the request's database thread.
    """
    from django.db.backends.postgresql.base import ServerSideCursor

    closes: list[bool] = []
    close = ServerSideCursor.close

    def recording_close(self: Any) -> None:
        try:
            asyncio.get_running_loop()
            closes.append(True)
        except RuntimeError:
            closes.append(False)
        close(self)

    monkeypatch.setattr(ServerSideCursor, "close", recording_close)
    return closes


@pytest.mark.parametrize("server_side", [True, False], ids=["server-side-cursor", "DISABLE_SERVER_SIDE_CURSORS"])
@pytest.mark.skipif(not POSTGRES, reason=NO_POSTGRES)
@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_postgres_streams_every_row_with_or_without_server_side_cursors(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch, cursor_closes: list[bool], server_side: bool
) -> None:
    expected = seed("postgres", 50)
    # The settings dict is shared by every thread's connection to the alias, the live server's too.
    monkeypatch.setitem(connections["postgres"].settings_dict, "DISABLE_SERVER_SIDE_CURSORS", not server_side)
    probe = uuid.uuid4().hex
    assert read(http, f"/qs/postgres/watched/?format=ndjson&chunk=7&probe={probe}")[0] == expected
    report = reports[probe]
    assert report.finished.wait(5)
    if server_side:
        ((name, holdable),) = report.during  # type: ignore[misc]
        assert name.startswith("_django_curs_") and holdable  # WITH HOLD: Django runs in autocommit
        assert cursor_closes == [False], "the cursor was closed on the event loop's thread"
    else:
        assert report.during == []  # every row was fetched at once, into the client
        assert cursor_closes == []
    assert report.after == []


@pytest.mark.skipif(not POSTGRES, reason=NO_POSTGRES)
@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_a_client_that_leaves_mid_export_releases_the_cursor_and_the_connection(
    http: httpx.Client, cursor_closes: list[bool]
) -> None:
    seed("postgres", 50)
    probe, gate = uuid.uuid4().hex, uuid.uuid4().hex
    gates[gate] = asyncio.Event()  # never opened: the export holds after its first row, its cursor open
    with connect_sse(http, "GET", f"/qs/postgres/watched/?stream=1&chunk=7&probe={probe}&gate={gate}") as source:
        first = next(source.iter_sse())
    assert first.id is not None
    report = reports[probe]
    assert report.finished.wait(5), "produce() did not end when the client left"
    assert report.during and report.during[0][0].startswith("_django_curs_")
    assert report.after == [], "the cursor was left open on the connection"
    assert cursor_closes == [False], "the cursor was closed on the event loop's thread"
    # Then the connection itself is closed (CONN_MAX_AGE=0): no session idles, in a transaction or not.
    assert wait_for_postgres(lambda: report.backend_pid not in dict(_pg_sessions())), _pg_sessions()
    assert all(state != "idle in transaction" for _, state in _pg_sessions())
