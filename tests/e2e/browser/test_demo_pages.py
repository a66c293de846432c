"""The demo pages in headless Chromium, against the demo views served by a real uvicorn (``live_url``).

Each test drives a page the way a visitor would (fill the form, press the button) and reads what
the page shows. Screenshots of every page, wide and 400 px narrow, are written to
``test-artifacts/screenshots/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import asyncio
import re
import threading

import pytest

from tests.support.browser import requests_to
from tests.support.paths import ROOT
from tests.support.probes import new_probe

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WIDE = {"width": 1200, "height": 900}
NARROW = {"width": 400, "height": 860}
HOSTILE_ITEM = "<img src=x onerror=\"window.__xss = 'item'\">"
HOSTILE_MESSAGE = "<script>window.__xss = 'script'</script><img src=x onerror=\"window.__xss = 'error'\">"


@pytest.fixture
def page(open_page, live_url):
    """A fresh page on the live server's origin; uncaught JavaScript errors fail the test."""
    from playwright.sync_api import expect

    expect.set_options(timeout=10_000)
    return open_page(live_url, viewport=WIDE)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def screenshot(page, name: str) -> None:
    """Full-page screenshots, wide and narrow; the narrow one must not scroll sideways."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    page.set_viewport_size(NARROW)
    try:
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        page.screenshot(path=SCREENSHOTS / f"{name}-narrow.png", full_page=True)
        assert overflow <= 0, f"{name}: {overflow}px of horizontal scrolling at 400px wide"
    finally:
        page.set_viewport_size(WIDE)


def fill(page, form: str, **fields) -> None:
    for name, value in fields.items():
        field = page.locator(f"{form} [name={name}]")
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(str(value))
        else:
            field.fill(str(value))


def texts(page, selector: str) -> list[str]:
    return page.locator(selector).all_text_contents()


def ms(text: str) -> int:
    return int(re.sub(r"\D", "", text))


# --- home -----------------------------------------------------------------------------------------


def test_home_links_to_every_demo(page):
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Demos")
    hrefs = page.locator(".card h2 a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert {"/ticker/", "/reconnect/", "/errors/", "/chat/", "/tabs/"} <= set(hrefs)
    for href in ["/ticker/", "/reconnect/", "/errors/", "/chat/", "/tabs/"]:
        assert page.request.get(href).status == 200
    # An NDJSON answer is a file to keep, not a page: a plain link would show it as text (issue 23).
    ndjson = page.locator("a[href*='format=ndjson']")
    assert ndjson.count() >= 2
    assert all(ndjson.nth(i).get_attribute("download") for i in range(ndjson.count()))
    screenshot(page, "home")


def test_every_page_loads_without_a_failed_request(page):
    """Every asset of every page loads. (Headless Chromium asks for no favicon: tests/unit/test_demo.py checks that.)

    Not /export/: it counts a table's rows, and Playwright's sync API bars this thread from the test database.
    """
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"{r.failure} {r.url}"))
    for path in ("/", "/ticker/", "/reconnect/", "/errors/", "/chat/"):
        page.goto(path, wait_until="networkidle")
        if path == "/ticker/":
            # The ticker streams on load, once its module has run: "networkidle" can come before that on a
            # busy machine, and leaving the page would then abort the streams. They end on their own.
            for panel in ("#batch", "#stream"):
                expect(page.locator(panel)).to_have_attribute("data-state", "complete", timeout=15_000)
    assert failed == []


# --- tabs -----------------------------------------------------------------------------------------


def test_tabs_page_shows_which_tab_leads(page):
    """One tab here; tests/e2e/browser/test_shared_tabs.py opens eight."""
    page.goto("/tabs/?interval=100")
    expect(page.locator("#tabs .count")).not_to_have_text("0")
    expect(page.locator("#tabs .role")).to_have_text("leader: reads the server's stream")
    expect(page.locator("#tabs .streams")).to_have_text("1")
    assert page.title().startswith("★ leader")
    assert texts(page, "#tabs .gaps, #tabs .duplicates") == ["0", "0"]
    screenshot(page, "tabs")
    page.goto("/tabs/?interval=100&shared=0")
    expect(page.locator("#tabs .role")).to_have_text("a stream of its own")


# --- ticker ---------------------------------------------------------------------------------------


# The lines the ticker's panels add, grouped by turn of the page's event loop (one MutationObserver
# callback each) and in order; a new run (submit) starts a new record.
RECORD_TICKER_TURNS_JS = """
() => {
  window.turns = [];
  document.addEventListener("submit", () => { window.turns = []; }, { capture: true });
  new MutationObserver((records) => {
    const added = records.flatMap((r) => [...r.addedNodes].filter((n) => n.nodeName === "LI")
      .map((n) => [r.target.closest("[id]").id, n.textContent]));
    if (added.length) window.turns.push(added);
  }).observe(document.querySelector(".panels"), { childList: true, subtree: true });
}
"""


@pytest.fixture
def ticker_gate(monkeypatch):
    """A ``threading.Event`` that the ticker's last step (``n`` 0) waits for, in the stream and the batch alike."""
    from project.demo.views import TickerView

    gate = threading.Event()
    produce = TickerView.produce

    async def gated(self, request, *args, **kwargs):
        async for event in produce(self, request, *args, **kwargs):
            if event.data["n"] == 0:
                await asyncio.to_thread(gate.wait)
            yield event

    monkeypatch.setattr(TickerView, "produce", gated)
    try:
        yield gate
    finally:
        gate.set()  # a failed test leaves no producer waiting


def test_ticker_shows_batch_and_stream_side_by_side(page, ticker_gate):
    """While the server holds the last step, the stream shows every step before it and the batch nothing;
    once it is produced, the batch shows all of its steps at once (in one turn of the page's event loop)."""
    page.goto("/ticker/")
    page.evaluate(RECORD_TICKER_TURNS_JS)
    fill(page, "#ticker-form", **{"from": 5, "interval": 50})
    page.locator("#ticker-form button[type=submit]").click()
    lines = [f"{n} left · {100 * (5 - n) // 5}%" for n in range(5, -1, -1)] + ["complete"]
    expect(page.locator("#stream .count")).to_have_text("5")
    assert texts(page, "#stream .log li") == lines[:5]
    assert texts(page, "#batch .log li") == [] and page.text_content("#batch .count") == "0"
    ticker_gate.set()
    for panel in ("#batch", "#stream"):
        expect(page.locator(f"{panel} .state")).to_have_text("complete")
        assert texts(page, f"{panel} .log li") == lines
        assert page.locator(f"{panel} progress").evaluate("p => p.value") == 100
        expect(page.locator(f"{panel} .count")).to_have_text("6")
        assert ms(page.text_content(f"{panel} .first")) <= ms(page.text_content(f"{panel} .total"))
    turns = page.evaluate("window.turns")
    batch_turns = [turn for turn in turns if any(panel == "batch" for panel, _ in turn)]
    assert batch_turns == [[["batch", line] for line in lines]], turns
    screenshot(page, "ticker")


def test_ticker_progress_bar_follows_the_stream(page):
    page.goto("/ticker/")
    fill(page, "#ticker-form", **{"from": 4, "interval": 600})
    page.locator("#ticker-form button[type=submit]").click()
    # Midway: the stream's bar has moved while the batch has nothing yet.
    expect(page.locator("#stream .count")).to_have_text("2")
    assert page.locator("#stream progress").evaluate("p => p.value") == 25
    assert page.locator("#batch progress").evaluate("p => p.value") == 0
    assert page.text_content("#batch .count") == "0"
    screenshot(page, "ticker-midway")
    page.locator("#ticker-stop").click()
    expect(page.locator("#stream .state")).to_have_text("closed")
    expect(page.locator("#batch .state")).to_have_text("closed")


# --- reconnect ------------------------------------------------------------------------------------


def test_reconnect_after_a_server_cut_resumes_with_last_event_id(page):
    page.goto("/reconnect/")
    fill(page, "#feed-form", count=10, interval=40, cut_every=4, retry=150)
    page.locator("#feed-start").click()
    expect(page.locator("#feed-state")).to_have_text("complete")
    assert texts(page, "#feed-ids li") == [str(n) for n in range(1, 11)]
    assert page.locator("#feed-ids .missing, #feed-ids .duplicate").count() == 0
    expect(page.locator("#feed-verdict")).to_have_text("all 10 ids, each exactly once: no gap, no duplicate")
    log = texts(page, "#feed-log li")
    assert len(log) == 3, log
    assert "fresh start" in log[0] and "ids 1–4" in log[0] and "without done" in log[0]
    # The browser reconnected by itself, and the server read where to resume from its Last-Event-ID header.
    assert "browser reconnect after #4" in log[1] and "resumed after #4 (read from the Last-Event-ID header)" in log[1]
    assert "ids 5–8" in log[1] and "without done" in log[1]
    assert "resumed after #8 (read from the Last-Event-ID header)" in log[2] and "ids 9–10" in log[2]
    assert log[2].endswith("done")
    screenshot(page, "reconnect")


DROP_AFTER_JS = """
(count) => {
  const ids = document.getElementById("feed-ids");
  new MutationObserver((_, observer) => {
    if (ids.children.length < count) return;
    observer.disconnect();
    document.getElementById("feed-drop").click();
  }).observe(ids, { childList: true });
}
"""


def test_reconnect_after_the_page_drops_the_stream_resumes_with_the_query(page):
    page.goto("/reconnect/")
    fill(page, "#feed-form", count=12, interval=120, cut_every=0, retry=1000)
    # Press "Drop & resume" as the third id appears, in the same turn of the page's event loop: the
    # next event cannot arrive first, however slow or fast the machine, so the drop falls after #3.
    page.evaluate(DROP_AFTER_JS, 3)
    page.locator("#feed-start").click()
    expect(page.locator("#feed-state")).to_have_text("complete")
    assert texts(page, "#feed-ids li") == [str(n) for n in range(1, 13)]
    expect(page.locator("#feed-verdict")).to_have_attribute("data-ok", "true")
    first, second = texts(page, "#feed-log li")
    assert "ids 1–3 (3)" in first and first.endswith("dropped by the page")
    assert "page reconnect after #3" in second
    assert "resumed after #3 (read from ?lastEventId=)" in second
    assert "ids 4–12" in second and second.endswith("done")
    screenshot(page, "reconnect-dropped")


def test_a_finished_stream_is_not_replayed_by_a_plain_eventsource(page, live_url):
    """No ``close()`` on ``done``: the browser reconnects after ``retry``, gets 204, and stops for good."""
    token, probe = new_probe()
    requests = requests_to(page, "/retry/")
    page.goto("/")
    out = page.evaluate(
        """(url) => new Promise((resolve) => {
          const source = new EventSource(url);  // never closed by this code
          const got = { messages: [], done: 0, errors: [] };
          source.onmessage = (e) => got.messages.push(e.lastEventId);
          source.addEventListener("done", () => { got.done += 1; });
          source.onerror = () => {
            got.errors.push(source.readyState);
            // CLOSED: the browser gave up, and an EventSource that has does not reconnect again. A
            // second error is the end of a replayed stream, or a refused reconnect: enough to fail.
            if (source.readyState === EventSource.CLOSED || got.errors.length > 1) resolve(got);
          };
        })""",
        f"/retry/?n=3&retry=200&probe={token}",
    )
    # The end of the stream (CONNECTING: it reconnects after retry), then the 204 (CLOSED).
    assert out == {"messages": ["0", "1", "2"], "done": 1, "errors": [0, 2]}
    assert [request.response().status for request in requests] == [200, 204]
    assert probe.finished.wait(10)
    assert probe.produced == 3 and probe.exit == "returned"  # the producer ran once


# --- errors ---------------------------------------------------------------------------------------


def test_errors_page_shows_the_error_event_of_a_stream_that_fails_midway(page):
    page.goto("/errors/")
    fill(page, "#errors-form", items=2, interval=50, failure="forbidden", message="Access revoked.", label="reading")
    page.locator("#errors-form button[type=submit]").click()
    expect(page.locator("#stream .state")).to_have_text("error event")
    assert texts(page, "#stream .log li") == ["#1 reading 1", "#2 reading 2"]
    stream_failure = page.locator("#stream .failure")
    expect(stream_failure).to_be_visible()
    assert [stream_failure.locator(s).text_content() for s in (".kind", ".status", ".message")] == [
        "server",
        "403",
        "Access revoked.",
    ]
    assert '"message": "Access revoked."' in stream_failure.locator(".detail").text_content()
    # The batch answer is an error status, never a partial 200: no item reached the page.
    expect(page.locator("#batch .state")).to_have_text("failed (http)")
    assert texts(page, "#batch .log li") == ["no items reached the page"]
    batch_failure = page.locator("#batch .failure")
    assert [batch_failure.locator(s).text_content() for s in (".kind", ".status", ".message")] == [
        "http",
        "403",
        "Access revoked.",
    ]
    screenshot(page, "errors")


def test_errors_page_a_failure_before_the_first_item_and_a_hidden_500(page):
    page.goto("/errors/")
    fill(page, "#errors-form", items=0, interval=0, failure="bug", message="secret detail")
    page.locator("#errors-form button[type=submit]").click()
    expect(page.locator("#batch .state")).to_have_text("failed (http)")
    batch = page.locator("#batch .failure")
    assert [batch.locator(s).text_content() for s in (".status", ".message")] == ["500", "Internal Server Error"]
    # EventSource cannot read an error response: the helper says it could not open the stream.
    expect(page.locator("#stream .state")).to_have_text("failed (network)")
    assert "secret detail" not in page.locator(".panels").text_content()
    screenshot(page, "errors-before-first-item")


# Every <img> or <script> added to the document from now on, however deep in what was added.
RECORD_ELEMENTS_JS = """
() => {
  window.created = [];
  new MutationObserver((records) => {
    for (const node of records.flatMap((r) => [...r.addedNodes])) {
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      for (const el of [node, ...node.querySelectorAll("img, script")]) {
        if (["IMG", "SCRIPT"].includes(el.tagName)) window.created.push(el.outerHTML);
      }
    }
  }).observe(document.documentElement, { childList: true, subtree: true });
}
"""


def test_hostile_event_data_is_shown_as_text_and_never_run(page):
    page.goto("/errors/")
    page.evaluate(RECORD_ELEMENTS_JS)
    fill(page, "#errors-form", items=2, interval=0, failure="gone", message=HOSTILE_MESSAGE, label=HOSTILE_ITEM)
    page.locator("#errors-form button[type=submit]").click()
    expect(page.locator("#stream .state")).to_have_text("error event")
    expect(page.locator("#batch .state")).to_have_text("failed (http)")
    assert texts(page, "#stream .log li") == [f"#1 {HOSTILE_ITEM} 1", f"#2 {HOSTILE_ITEM} 2"]
    for panel in ("#batch", "#stream"):
        assert page.locator(f"{panel} .failure .message").text_content() == HOSTILE_MESSAGE
    # No element came of the data, so no handler of it can run later: no wait for an <img onerror>.
    assert page.evaluate("window.created") == []
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("main img, main script").count() == 0
    screenshot(page, "errors-hostile")


# --- the recipes of docs/browser.md, against the real server ---------------------------------------


# The recipe's handlers; the page answers once the source is closed, by the recipe or by the browser:
# a closed EventSource fires nothing more. The timer only bounds a test that fails.
PLAIN_EVENTSOURCE_JS = """
(url) => new Promise((resolve) => {
  const log = [];
  const source = new EventSource(url);
  const settle = () => { if (source.readyState === EventSource.CLOSED) resolve({ log, readyState: source.readyState }); };
  setTimeout(() => resolve({ log, readyState: source.readyState, timedOut: true }), 10000);
  source.onmessage = (e) => log.push(["item", JSON.parse(e.data), e.lastEventId]);
  source.addEventListener("done", () => { log.push(["done"]); source.close(); settle(); });
  source.addEventListener("error", (e) => {
    if (e instanceof MessageEvent) {       // the server's `event: error`: it carries data
      const { error } = JSON.parse(e.data);
      log.push(["server error", error.status, error.message]);
      source.close();                      // the stream ends without done: do not retry
    } else if (source.readyState === EventSource.CONNECTING) {
      log.push(["reconnecting"]);          // a cut: the browser retries by itself
    } else {
      log.push(["refused"]);               // HTTP error, 204 or not text/event-stream: it gave up
    }
    settle();
  });
})
"""


def test_plain_eventsource_tells_the_error_event_from_a_connection_error(page):
    page.goto("/")
    failed = page.evaluate(
        PLAIN_EVENTSOURCE_JS, "/api/flaky/?stream=1&items=2&interval=0&failure=forbidden&message=Revoked."
    )
    assert failed == {
        "log": [
            ["item", {"i": 1, "text": "reading 1"}, ""],
            ["item", {"i": 2, "text": "reading 2"}, ""],
            ["server error", 403, "Revoked."],
        ],
        "readyState": 2,
    }
    refused = page.evaluate(PLAIN_EVENTSOURCE_JS, "/api/flaky/?stream=1&items=0&failure=forbidden")
    assert refused == {"log": [["refused"]], "readyState": 2}
    cut = page.evaluate(PLAIN_EVENTSOURCE_JS, "/api/feed/?stream=1&count=4&interval=0&cut_every=2&retry=100")
    assert cut["readyState"] == 2
    assert cut["log"] == [
        ["item", {"n": 1, "of": 4, "after": 0, "via": None}, "1"],
        ["item", {"n": 2, "of": 4, "after": 0, "via": None}, "2"],
        ["reconnecting"],
        ["item", {"n": 3, "of": 4, "after": 2, "via": "header"}, "3"],
        ["item", {"n": 4, "of": 4, "after": 2, "via": "header"}, "4"],
        ["done"],
    ]


POST_STREAM_JS = """
async ({ helper, url, options }) => {
  const { postStream } = await import(helper);
  const log = [];
  const handle = postStream(url, { question: "how many?" }, {
    ...options,
    onItem: (item) => log.push(["item", item]),
    onDone: () => log.push(["done"]),
    onError: (err) => log.push(["error", err.kind, err.status]),
  });
  return { outcome: await handle.finished, log };
}
"""


def test_post_stream_with_django_csrf_token(page):
    """postStream() sends Django's token from the csrftoken cookie by itself; without it Django refuses the POST."""
    page.goto("/csrf-page/")  # any page that sets the csrftoken cookie
    assert page.evaluate("document.cookie").startswith("csrftoken=")
    args = {"helper": "/static/dualstream/dualstream.js", "url": "/count/?n=3"}
    out = page.evaluate(POST_STREAM_JS, {**args, "options": {}})
    assert out == {
        "outcome": "done",
        "log": [["item", {"i": 0}], ["item", {"i": 1}], ["item", {"i": 2}], ["done"]],
    }
    out = page.evaluate(POST_STREAM_JS, {**args, "options": {"csrf": False}})
    assert out == {"outcome": "error", "log": [["error", "http", 403]]}  # Django's CSRF check; not retried


# --- chat -----------------------------------------------------------------------------------------


def test_chat_page_streams_a_post_and_matches_the_batch_answer(page):
    failed: list[str] = []  # the reply ends with `data: [DONE]`: the helper must not cut the response's end off
    page.on("requestfailed", lambda r: failed.append(f"{r.failure} {r.url}"))
    page.goto("/chat/")
    prompt = f"Why is the sky blue? {HOSTILE_ITEM}"
    fill(page, "#chat-form", prompt=prompt)
    page.locator("#chat-form button[type=submit]").click()  # streamed: postStream() over fetch()
    expect(page.locator(".timings .state")).to_have_text("complete")
    expect(page.locator(".timings .total")).not_to_have_text("…")
    streamed = page.locator(".bubble.assistant").nth(0).text_content()
    tokens = int(page.text_content(".timings .count"))
    first, total = ms(page.text_content(".timings .first")), ms(page.text_content(".timings .total"))
    assert tokens > 5 and first < total  # the first token showed long before the last
    screenshot(page, "chat")

    page.locator("#chat-form [name=stream]").uncheck()  # the same question as one chat.completion
    page.locator("#chat-form button[type=submit]").click()
    expect(page.locator(".bubble.assistant")).to_have_count(2)
    expect(page.locator(".timings .state")).to_have_text("complete")
    assert page.locator(".bubble.assistant").nth(1).text_content() == streamed != ""
    assert int(page.text_content(".timings .count")) == tokens
    assert page.locator(".bubble.user").nth(0).text_content() == prompt
    assert page.evaluate("window.__xss") is None and page.locator("main img").count() == 0
    assert failed == []
