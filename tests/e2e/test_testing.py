"""dualstream.testing.fetch_stream against a live uvicorn: it reads the first events, then disconnects."""

from __future__ import annotations

import httpx

from dualstream.testing import fetch_stream
from tests.support.probes import new_probe


def test_fetch_stream_reads_a_live_server_and_disconnects(live_url: str) -> None:
    token, probe = new_probe()
    received = fetch_stream(f"{live_url}/endless/?stream=1&probe={token}", 2)
    assert [item["i"] for item in received.items] == [0, 1]
    assert probe.finished.wait(5)  # the server saw the disconnect
    with httpx.Client(base_url=live_url) as client:
        assert fetch_stream("/resumable/?format=ndjson", client=client).end == "done"
        assert fetch_stream("/resumable/", client=client).items == [{"i": i} for i in range(10)]  # gzipped
