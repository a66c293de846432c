"""The demo's export endpoint read over HTTP from uvicorn, in each mode."""

from __future__ import annotations

import io
import json

import httpx
import pytest
from django.core.management import call_command

from project.demo.models import Reading


@pytest.mark.django_db(transaction=True)
def test_the_export_endpoint_streams_every_reading_in_each_mode(live_url: str) -> None:
    call_command("seed_demo", rows=30, stdout=io.StringIO())
    with httpx.Client(base_url=live_url, timeout=10) as http:
        batch = http.get("/api/readings/?format=json")
        ndjson = http.get("/api/readings/?format=ndjson").text.splitlines()
        assert http.get("/static/demo/export.js").status_code == 200
    assert batch.headers.get("Content-Encoding") == "identity"  # streamed: batch_streaming is on
    ids = list(Reading.objects.order_by("id").values_list("id", flat=True))
    assert [row["id"] for row in batch.json()["items"]] == ids
    assert [json.loads(line)["id"] for line in ndjson] == ids
    assert set(batch.json()["items"][0]) == {"id", "sensor", "taken_at", "value"}
