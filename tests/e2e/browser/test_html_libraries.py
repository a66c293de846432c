"""htmx 2, htmx 4 and Datastar v1, the real libraries in Chromium, against dualstream's live HTML (a live uvicorn).

The libraries are the vendored files the demo serves (``static/vendor/README.md`` says where each
comes from): htmx.org 2.0.11 + htmx-ext-sse 2.2.4 and htmx.org 4.0.1 (npm), Datastar v1.0.1 (the
build in PyPI's ``starhtml`` 0.7.0 wheel). For each: a finished stream is not requested again, a
stream the server cuts (``Reconnect``) resumes after the last row with ``Last-Event-ID``, and a
failure reaches the page. What the browser sends is read from the requests Chromium makes.
"""

from __future__ import annotations

import threading
from urllib.parse import parse_qs

import pytest
from django.core.signals import request_started

from dualstream.renderers import COMPLETED_ID

FEED = "/api/live/"


class FeedRequests:
    """What the server received for the feed: ``(query, headers)``, header names lower-cased.

    Read on the server (Django's ``request_started`` carries the ASGI scope): Chromium adds
    ``Last-Event-ID`` to an EventSource's reconnection below what Playwright reports.
    """

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, list[str]], dict[str, str]]] = []
        self._changed = threading.Condition()

    def __call__(self, sender: object, scope: dict | None = None, **kwargs: object) -> None:
        if scope is None or scope.get("path") != FEED:
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        with self._changed:
            self.seen.append((parse_qs(scope["query_string"].decode()), headers))
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 15) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.seen) >= count, timeout), self.seen

    def last_event_ids(self) -> list[str | None]:
        return [headers.get("last-event-id") for _, headers in self.seen]

    def __len__(self) -> int:
        return len(self.seen)

    def __getitem__(self, index: int) -> tuple[dict[str, list[str]], dict[str, str]]:
        return self.seen[index]


@pytest.fixture
def page(open_page, live_url):
    """A fresh page on the live server's origin, with the feed's requests recorded; JavaScript errors fail it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    page = open_page(live_url)
    page.feed_requests = FeedRequests()
    request_started.connect(page.feed_requests)
    try:
        yield page
    finally:
        request_started.disconnect(page.feed_requests)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def rows(page) -> list[str]:
    return page.locator("#rows li").all_text_contents()


def expected_rows(count: int, label: str = "Row") -> list[str]:
    return [f"{label} {n} of {count}" for n in range(1, count + 1)]


def wait_for_feed_request(page, trigger, query: str):
    """The request for the feed with ``query`` in its URL, and its response, once ``trigger()`` has run.

    Matched by its query: the page's own stream may start while ``trigger()`` runs.
    """
    with page.expect_request(lambda r: FEED in r.url and query in r.url) as info:
        trigger()
    request = info.value
    return request, request.response()


def custom_page(page, live_url: str, body: str, scripts: list[str]) -> None:
    """Serve ``body`` (with the vendored ``scripts``) as a page of the live server's origin, and open it."""
    tags = "".join(f'<script src="/static/vendor/{src}"></script>' for src in scripts)
    html = f"<!doctype html><meta charset=utf-8><title>t</title><body>{body}{tags}</body>"
    page.route(f"{live_url}/custom/", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto("/custom/")


HTMX2 = ["htmx-2.0.11/htmx.min.js", "htmx-ext-sse-2.2.4/sse.js"]
HTMX4 = ["htmx-4.0.1/htmx.min.js", "htmx-4.0.1/hx-sse.js"]


# --- htmx 2 ---------------------------------------------------------------------------------------


def test_htmx2_stream_ends_closed_and_is_not_replayed(page):
    page.goto("/live/htmx/?count=4&interval=20")
    expect(page.locator("#status")).to_have_text("done")
    assert rows(page) == expected_rows(4)
    # sse-close="done" closed the EventSource: a closed one never reconnects, nor does the extension
    # open another (it does so only from onerror, which a closed source never fires).
    state = page.evaluate("document.getElementById('rows')['htmx-internal-data'].sseEventSource.readyState")
    assert state == 2  # EventSource.CLOSED
    assert len(page.feed_requests) == 1


def test_htmx2_without_sse_close_replays_the_stream_from_the_start(page, live_url):
    """Why the tag writes sse-close: after the 204 the extension opens a fresh EventSource, with no id."""
    # 1: the stream; 2: EventSource's own reconnect with the done id, answered 204; 3: the extension's new one.
    custom_page(
        page,
        live_url,
        f'<ol id="rows" hx-ext="sse" sse-connect="{FEED}?count=2&interval=0" sse-swap="message" '
        'hx-swap="beforeend"></ol>',
        HTMX2,
    )
    page.feed_requests.wait_for(3)
    assert page.feed_requests[1][1].get("last-event-id") == COMPLETED_ID
    assert "last-event-id" not in page.feed_requests[2][1]  # a replay from the first row


def test_htmx2_resumes_after_a_server_cut(page):
    page.goto("/live/htmx/?count=6&interval=20&cut=3")
    expect(page.locator("#status")).to_have_text("done")
    assert rows(page) == expected_rows(6)  # each row once: no gap, no duplicate
    assert page.feed_requests.last_event_ids() == [None, "3"]


def test_htmx2_hx_get_of_the_same_view_is_html(page):
    page.goto("/live/htmx/?count=2&interval=0")
    request, response = wait_for_feed_request(page, lambda: page.locator("#snapshot-button").click(), "count=3")
    expect(page.locator("#snapshot li")).to_have_count(3)
    assert request.headers["hx-request"] == "true"
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert page.locator("#snapshot li").all_text_contents() == expected_rows(3)


def test_htmx2_error_event_reaches_the_page(page):
    page.goto("/live/htmx/?count=5&interval=20&fail=2")
    expect(page.locator("#status")).to_have_text("failed: Internal Server Error")
    assert rows(page) == expected_rows(5)[:2]


# --- htmx 4 ---------------------------------------------------------------------------------------


def test_htmx4_stream_closes_on_done(page):
    page.goto("/live/htmx/?htmx=4&count=4&interval=20")
    expect(page.locator("#status")).to_have_text("done")
    assert rows(page) == expected_rows(4)
    assert page.evaluate("document.getElementById('rows')._htmx?.sse") is None  # the connection is gone
    request_headers = page.feed_requests[0][1]
    assert request_headers["hx-request"] == "true" and "text/event-stream" in request_headers["accept"]
    assert len(page.feed_requests) == 1


def test_htmx4_resumes_after_a_server_cut(page):
    page.goto("/live/htmx/?htmx=4&count=6&interval=20&cut=3")
    expect(page.locator("#status")).to_have_text("done")
    assert rows(page) == expected_rows(6)
    assert page.feed_requests.last_event_ids() == [None, "3"]


def test_htmx4_without_close_is_slowed_to_a_minute_not_looped(page, live_url):
    """htmx 4 takes a 204 for success and reconnects every ~0.5 s; it gets the done event, with retry: 60000."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    with page.expect_response(
        lambda r: FEED in r.url and r.request.headers.get("last-event-id") == COMPLETED_ID
    ) as info:
        custom_page(
            page, live_url, f'<ol id="rows" hx-sse:connect="{FEED}?count=2&interval=0" hx-swap="beforeend"></ol>', HTMX4
        )
    reconnect = info.value
    assert reconnect.status == 200 and reconnect.headers["content-type"].startswith("text/event-stream")
    assert reconnect.text() == f"event: done\nid: {COMPLETED_ID}\nretry: 60000\ndata: \n\n"
    # With a 204 the next request came within a second (0.5 s +-30 %); now not before 60 s +-30 %.
    with pytest.raises(PlaywrightTimeout):
        page.wait_for_event("request", lambda r: FEED in r.url, timeout=3_000)
    assert rows(page) == expected_rows(2)


# --- Datastar -------------------------------------------------------------------------------------


def record_datastar_fetches(page) -> None:
    """Keep the type of every ``datastar-fetch`` event (started, finished, error, retrying...) in ``window.__fetches``."""
    page.evaluate(
        "window.__fetches = [];document.addEventListener('datastar-fetch', e => window.__fetches.push(e.detail.type));"
    )


def submit_datastar_form(page, **fields) -> None:
    for name, value in fields.items():
        page.locator(f"#live-form [name={name}]").fill(str(value))
    page.locator("#stream-button").click()


def test_datastar_form_signals_drive_the_stream_which_ends_for_good(page):
    page.goto("/live/datastar/?interval=20")
    record_datastar_fetches(page)
    # Datastar's retry 'always' comes back once after the end, with the done id: a 204 stops it.
    with page.expect_response(
        lambda r: FEED in r.url and r.request.headers.get("last-event-id") == COMPLETED_ID
    ) as info:
        submit_datastar_form(page, label="Fruit", count=3)
    assert info.value.status == 204
    page.wait_for_function("window.__fetches.includes('finished')")
    assert rows(page) == expected_rows(3, "Fruit")
    expect(page.locator("#progress")).to_have_text("3 / 3")
    query, headers = page.feed_requests[0]
    assert headers["datastar-request"] == "true"
    assert '"label":"Fruit"' in query["datastar"][0]  # the form's signals, as Datastar sends them on a GET
    assert len(page.feed_requests) == 2


def test_datastar_resumes_after_a_server_cut(page):
    page.goto("/live/datastar/?interval=20&cut=3")
    record_datastar_fetches(page)
    with page.expect_response(lambda r: FEED in r.url and r.request.headers.get("last-event-id") == COMPLETED_ID):
        submit_datastar_form(page, count=6)
    page.wait_for_function("window.__fetches.includes('finished')")
    assert rows(page) == expected_rows(6)
    assert page.feed_requests.last_event_ids() == [None, "3", COMPLETED_ID]


def test_datastar_shows_a_failure_and_does_not_run_it_again(page):
    page.goto("/live/datastar/?interval=20&fail=2")
    record_datastar_fetches(page)
    with page.expect_response(
        lambda r: FEED in r.url and r.request.headers.get("last-event-id") == COMPLETED_ID
    ) as info:
        submit_datastar_form(page, count=5)
    assert info.value.status == 204
    expect(page.locator("body > .dualstream-error[role=alert]")).to_have_text("Internal Server Error")
    page.wait_for_function("window.__fetches.includes('finished')")
    assert rows(page) == expected_rows(5)[:2]
