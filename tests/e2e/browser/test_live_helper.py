"""dualstream.js against the demo's views on a real uvicorn: a hidden tab that pauses, the fetch transport.

``page.route`` cannot cut a response midway or show what a real server reads from a request: these
tests need the server (``live_url``).
"""

from __future__ import annotations

import pytest

from project.demo.tabs import CLOCK_STREAMS
from tests.support.browser import requests_to, wait_streams

HELPER = "/static/dualstream/dualstream.js"


@pytest.fixture
def page(open_page, live_url):
    page = open_page(live_url)
    page.goto("/csrf-page/")  # a page of the origin that sets Django's csrftoken cookie
    return page


# Headless Chromium never hides a page: the test sets document.visibilityState and fires the event a
# browser fires when the user switches tabs.
VISIBILITY_JS = """
(state) => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
  document.dispatchEvent(new Event("visibilitychange"));
}
"""

CLOCK_JS = """
async (helper) => {
  const { stream } = await import(helper);
  window.got = [];
  window.states = [];
  window.handle = stream("/api/clock/?interval=50", {
    pauseWhenHidden: true,
    onItem: (item, ev) => window.got.push([item.n, ev.lastEventId]),
    onState: (state) => window.states.push(state),
  });
}
"""


def test_a_hidden_tab_pauses_and_resumes_after_its_last_id(page):
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)
    requests = requests_to(page, "/api/clock/")
    page.evaluate(CLOCK_JS, HELPER)
    page.wait_for_function("window.got.length >= 3")
    page.evaluate(VISIBILITY_JS, "hidden")
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)  # the server's stream ended: its finally ran
    assert page.evaluate("window.handle.state") == "paused"
    paused_at = page.evaluate("window.got.length")
    page.evaluate(VISIBILITY_JS, "visible")
    page.wait_for_function(f"window.got.length >= {paused_at + 3}")
    got = page.evaluate("window.got")
    assert [n for n, _ in got] == list(range(1, len(got) + 1))  # resumed after the last id: no gap, no repeat
    assert [n for n, _ in got] == [int(i) for _, i in got]
    last_before = got[paused_at - 1][0]
    assert requests[0].url.endswith("interval=50&stream=1")
    assert requests[1].url.endswith(f"interval=50&stream=1&lastEventId={last_before}")
    assert page.evaluate("window.states")[:4] == ["connecting", "open", "paused", "connecting"]
    page.evaluate("window.handle.close()")
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)


FETCH_JS = """
async ({ helper, url, options }) => {
  const { stream } = await import(helper);
  const log = [];
  const handle = stream(url, {
    ...options,
    onItem: (item, ev) => log.push([item, ev.lastEventId]),
    onError: (err) => log.push(["error", err.kind, err.status]),
    onState: (state) => log.push(state),
  });
  return { outcome: await handle.finished, log };
}
"""


def test_fetch_transport_posts_with_headers_and_resumes_after_cuts(page):
    """The feed ends its stream every two events without ``done``, as a cut would: the helper sends the
    same POST again with ``Last-Event-ID``, which the server reads (``via: header``), and Django's CSRF
    token from the cookie, which Django checks."""
    requests = requests_to(page, "/api/feed/")
    options = {"method": "POST", "body": {"question": 1}, "headers": {"Authorization": "Bearer t0ken"}}
    out = page.evaluate(
        FETCH_JS, {"helper": HELPER, "url": "/api/feed/?count=5&interval=0&cut_every=2&retry=50", "options": options}
    )
    assert out["outcome"] == "done"
    items = [entry for entry in out["log"] if isinstance(entry, list)]
    assert items == [
        [{"n": 1, "of": 5, "after": 0, "via": None}, "1"],
        [{"n": 2, "of": 5, "after": 0, "via": None}, "2"],
        [{"n": 3, "of": 5, "after": 2, "via": "header"}, "3"],
        [{"n": 4, "of": 5, "after": 2, "via": "header"}, "4"],
        [{"n": 5, "of": 5, "after": 4, "via": "header"}, "5"],
    ]
    assert [entry for entry in out["log"] if isinstance(entry, str)] == [
        "connecting", "open", "reconnecting", "open", "reconnecting", "open", "closed",
    ]  # fmt: skip
    sent = [r.headers | {"body": r.post_data} for r in requests]
    assert [h.get("last-event-id") for h in sent] == [None, "2", "4"]
    assert {h["authorization"] for h in sent} == {"Bearer t0ken"}
    assert {h["body"] for h in sent} == {'{"question":1}'}
    assert all(h["x-csrftoken"] for h in sent)


def test_fetch_transport_stops_at_a_403(page):
    """No retry loop on a refusal: one request, one error."""
    sent = requests_to(page, "/api/feed/")
    options = {"method": "POST", "body": {}, "csrf": False}
    out = page.evaluate(FETCH_JS, {"helper": HELPER, "url": "/api/feed/?count=3", "options": options})
    assert out == {"outcome": "error", "log": ["connecting", "closed", ["error", "http", 403]]}
    assert len(sent) == 1
