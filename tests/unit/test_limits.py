"""Limits: max_streams, max_batch_items and long ids, through Django's test client."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings


@pytest.mark.django_db  # closing a response sends request_finished, which looks at the connections
def test_beyond_max_streams_a_new_stream_is_a_503_with_retry_after(client: Client) -> None:
    with override_settings(DUALSTREAM={"MAX_STREAMS": 1}):
        first = client.get("/endless/?stream=1")  # open, and not yet read
        try:
            refused = client.get("/count/?stream=1")
            batch = client.get("/count/?format=json")  # not a stream: not counted, not refused
        finally:
            first.close()
        after = client.get("/count/?stream=1")
        b"".join(after)
    assert first.status_code == 200
    assert refused.status_code == 503
    assert refused["Retry-After"] == "1"
    assert json.loads(refused.content)["error"]["status"] == 503
    assert batch.status_code == 200
    assert after.status_code == 200


@pytest.mark.django_db
def test_beyond_max_batch_items_a_buffered_answer_is_a_400_that_points_to_streams(client: Client) -> None:
    with override_settings(DUALSTREAM={"MAX_BATCH_ITEMS": 3}):
        within = client.get("/count/?n=3&format=json")
        beyond = client.get("/count/?n=4&format=json")
        streamed = client.get("/count/?n=4&format=ndjson")
        lines = b"".join(streamed).splitlines()
    assert json.loads(within.content) == {"items": [{"i": i} for i in range(3)]}
    assert beyond.status_code == 400
    assert "ask for a stream" in json.loads(beyond.content)["error"]["message"]
    assert len(lines) == 4


@pytest.mark.django_db
def test_a_last_event_id_over_1024_characters_is_ignored_and_not_echoed(client: Client) -> None:
    long_id = "9" * 1025
    response = client.get("/resumable/?format=json", headers={"Last-Event-ID": long_id})
    resumed = client.get("/resumable/?format=json", headers={"Last-Event-ID": "6"})
    assert response.status_code == 200
    assert [item["i"] for item in json.loads(response.content)["items"]] == list(range(10))  # from the start
    assert [item["i"] for item in json.loads(resumed.content)["items"]] == [7, 8, 9]  # after the id
    assert long_id not in response.content.decode()
