"""A CPU-heavy request step off the event loop (dualstream/offload.py): the server's other streams go on.

Where each step runs, and that it gives the same answers, is tests/unit/test_offload.py's.
"""

from __future__ import annotations

import threading
import time

import httpx

from dualstream.llm.views import OFFLOAD_BODY_SIZE
from tests.support.offload import COUNTING, chat_body, in_pool


def test_a_stream_keeps_ticking_while_a_large_request_s_prompt_is_counted(
    live_url: str, counted: list[tuple[str, bool]]
) -> None:
    """The prompt count takes 2 s of Python; a ticker on the same server's loop must not wait for it.

    The bound is for liveness only (0.05 s ticks; a loop held by the count would show a 2 s gap).
    """
    arrivals: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        with (
            httpx.Client(timeout=10) as client,
            client.stream("GET", f"{live_url}/tick/?interval=0.05&n=400", headers={"Accept": "text/event-stream"}) as r,
        ):
            for line in r.iter_lines():
                if line.startswith("data:"):
                    arrivals.append(time.monotonic())
                if stop.is_set():
                    return

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    body = chat_body(OFFLOAD_BODY_SIZE, busy=2.0)
    with httpx.Client(timeout=30) as client:
        while not arrivals:  # the stream is open before the request is sent
            time.sleep(0.01)
        started = time.monotonic()
        response = client.post(f"{live_url}{COUNTING}", content=body, headers={"Content-Type": "application/json"})
        ended = time.monotonic()
    stop.set()
    ticker.join(timeout=10)
    assert response.status_code == 200 and [in_pool(place) for place in counted] == [True]
    during = [t for t in arrivals if started <= t <= ended]
    gaps = [b - a for a, b in zip([started, *during], [*during, ended], strict=True)]
    assert ended - started >= 2.0
    assert max(gaps) < 1.0, f"the stream stalled {max(gaps):.2f} s while the prompt was counted"
