"""dualstream.testing: a response's first items and its end, from Client and AsyncClient (a live server: tests/e2e/test_testing.py)."""

from __future__ import annotations

import asyncio

import pytest
from django.test import AsyncClient, Client

from dualstream.testing import Received, aread_stream, read_stream
from tests.support.probes import new_probe


def test_the_first_events_of_a_stream_with_their_ids_then_it_is_still_open() -> None:
    received = read_stream(Client().get("/resumable/?stream=1"), 3)
    assert (received.status, received.content_type) == (200, "text/event-stream")
    assert received.ids == ["0", "1", "2"] and received.names == ["message"] * 3
    assert received.items == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert received.events[0].data == '{"i":0}'  # as sent; items decodes it
    assert received.end is None  # the reading stopped first


@pytest.mark.parametrize(
    ("path", "items", "end"),
    [
        ("/resumable/?stream=1", [{"i": i} for i in range(10)], "done"),
        ("/resumable/?format=ndjson", [{"i": i} for i in range(10)], "done"),
        ("/resumable/", [{"i": i} for i in range(10)], "done"),
        ("/count-streamed/?n=2", [{"i": 0}, {"i": 1}], "done"),
        ("/paced/?n=3&interval=0.05&stream=1", [{"i": 0}, {"i": 1}, {"i": 2}], "done"),  # keep-alives between
        ("/count/?n=5&fail=500&after=2&stream=1", [{"i": 0}, {"i": 1}], "error"),
        ("/count/?n=5&fail=500&after=2&format=ndjson", [{"i": 0}, {"i": 1}], "error"),
        ("/count-streamed/?n=5&fail=500&after=2", [], "error"),  # left unterminated
        ("/count/?fail=404&stream=1", [], "error"),
    ],
)
def test_a_whole_answer_and_how_it_ended_in_every_mode(path: str, items: list[object], end: str) -> None:
    received = read_stream(Client().get(path))
    assert (received.items, received.end) == (items, end)
    if end == "error" and received.content_type != "application/json":  # an unterminated batch says no more
        assert received.error is not None and received.error["message"] in ("Internal Server Error", "No such thing.")


def test_an_http_error_is_its_status_and_json_error() -> None:
    received = read_stream(Client().get("/count/?fail=404&stream=1"))
    assert (received.status, received.end, received.error) == (
        404,
        "error",
        {"status": 404, "message": "No such thing."},
    )


def test_a_stream_the_server_cuts_ends_as_cut() -> None:
    received = read_stream(Client().get("/tick-cut/?interval=0.01&stream=1"))
    assert received.end == "cut" and len(received) >= 1


def test_a_reconnect_after_done_is_a_204_that_ends_as_done() -> None:
    response = Client().get("/resumable/?stream=1", HTTP_LAST_EVENT_ID="dualstream-completed")
    assert read_stream(response) == Received(204, "text/event-stream", end="done")


def test_read_stream_closes_the_producer_before_it_returns() -> None:
    token, probe = new_probe()
    received = read_stream(Client().get(f"/endless/?stream=1&probe={token}"), 2)
    assert received.items == [{"i": 0, "payload": "x" * 10}, {"i": 1, "payload": "x" * 10}]
    assert probe.finished.is_set() and probe.exit in ("cancelled", "closed")


def test_aread_stream_closes_the_producer_before_it_returns() -> None:
    token, probe = new_probe()

    async def scenario() -> Received:
        return await aread_stream(await AsyncClient().get(f"/endless/?format=ndjson&probe={token}"), 3)

    received = asyncio.run(scenario())
    assert [item["i"] for item in received.items] == [0, 1, 2] and received.end is None
    assert probe.finished.is_set() and probe.exit in ("cancelled", "closed")
