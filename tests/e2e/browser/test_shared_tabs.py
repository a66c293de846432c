"""Many tabs of one page against a real uvicorn over HTTP/1.1: ``stream(url, {shared: true})`` in Chromium.

A browser opens at most six HTTP/1.1 connections to an origin. Eight tabs that each hold a stream
leave the seventh and eighth unable even to load their page; with a shared stream one tab (the leader)
reads the server's stream and the others follow it. The page is the demo's /tabs/ page, whose clock
feed counts the server streams it holds (``CLOCK_STREAMS``) and whose ids are consecutive integers, so
that each tab can tell a gap or a duplicate.
"""

from __future__ import annotations

import pytest

from project.demo.tabs import CLOCK_STREAMS
from tests.support.browser import wait_streams

TABS = 8
INTERVAL_MS = 100
PANEL = "document.getElementById('tabs').dataset"
WATCHDOG_MS = 2000  # the helper's default ``watchdog``
# The helper's only interval is a follower's watchdog, which steals the lock of a leader that stopped
# answering. Held (registered, never run), it cannot take over: a new leader can only have come by the
# lock its predecessor released.
HOLD_WATCHDOG_JS = """
window.heldIntervals = [];
window.setInterval = (callback, ms) => { window.heldIntervals.push(ms); return 0; };
"""


@pytest.fixture
def context(chromium_browser, live_url):
    context = chromium_browser.new_context(base_url=live_url, service_workers="block")
    try:
        yield context
    finally:
        context.close()


def panel(page) -> dict[str, str]:
    return page.evaluate(f"({{...{PANEL}}})")


def wait_count(page, at_least: int) -> None:
    page.wait_for_function(f"Number({PANEL}.count || 0) >= {at_least}", timeout=10_000)


def assert_consecutive(page) -> dict[str, str]:
    """What the tab received: every id from its first to its last, each once (the page counts gaps and repeats)."""
    data = panel(page)
    shown = page.evaluate("[...document.querySelectorAll('#tabs .gaps, #tabs .duplicates')].map(e => e.textContent)")
    assert shown == ["0", "0"], data
    assert int(data["count"]) == int(data["last"]) - int(data["first"]) + 1, data
    return data


def roles_of(pages) -> list[str]:
    return sorted(panel(page)["role"] for page in pages)


def test_eight_tabs_share_one_stream_and_hand_over_without_gap_or_duplicate(context):
    """Each close of the leader hands over by the Web Lock it held, with the watchdog held in every tab."""
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0), "a clock stream of another test is still open"
    CLOCK_STREAMS.peak = 0
    opened_before = CLOCK_STREAMS.opened
    context.add_init_script(HOLD_WATCHDOG_JS)
    pages = []
    for _ in range(TABS):
        page = context.new_page()
        page.goto(f"/tabs/?interval={INTERVAL_MS}", timeout=10_000)  # tabs 7 and 8 load too
        pages.append(page)
    for page in pages:
        wait_count(page, int(panel(page).get("count", 0)) + 3)  # every tab receives
    assert [page.evaluate("window.heldIntervals") for page in pages] == [[WATCHDOG_MS]] * TABS
    assert roles_of(pages) == ["follower"] * (TABS - 1) + ["leader"]
    assert CLOCK_STREAMS.peak == 1

    handovers = 0
    while pages:
        [leader] = [page for page in pages if panel(page)["role"] == "leader"]
        before = {page: int(panel(page)["last"]) for page in pages if page is not leader}
        leader.close()  # the leader goes first: each close is a handover
        pages.remove(leader)
        if not pages:
            break
        for page in pages:
            wait_count(page, int(panel(page)["count"]) + 3)  # events flow again, through the new leader
        assert roles_of(pages) == ["follower"] * (len(pages) - 1) + ["leader"]
        for page in pages:
            data = assert_consecutive(page)
            assert int(data["last"]) >= before[page] + 3
        handovers += 1
    assert handovers == TABS - 1
    # Every server stream's finally ran once the tabs were gone.
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)
    assert CLOCK_STREAMS.closed == CLOCK_STREAMS.opened
    assert CLOCK_STREAMS.peak <= 2
    print(
        f"\nshared tabs: {TABS} tabs, peak server streams {CLOCK_STREAMS.peak}, "
        f"streams opened {CLOCK_STREAMS.opened - opened_before}, "
        f"{handovers} handovers by the lock (watchdogs held); gaps 0, duplicates 0"
    )


def open_tabs(context, count: int) -> list:
    pages = []
    for _ in range(count):
        page = context.new_page()
        page.goto(f"/tabs/?interval={INTERVAL_MS}")
        pages.append(page)
    for page in pages:
        wait_count(page, 2)
    return pages


def leader_of(pages):
    [leader] = [page for page in pages if panel(page).get("role") == "leader"]
    return leader


# Headless Chromium never hides or freezes a page by itself (Page.setWebLifecycleState leaves a visible
# page alone, and every headless window is visible): the tests dispatch the events a browser would.
AWAY = {
    "frozen": ("document.dispatchEvent(new Event('freeze'))", "document.dispatchEvent(new Event('resume'))"),
    "bfcache": (
        "window.dispatchEvent(new PageTransitionEvent('pagehide', {persisted: true}))",
        "window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))",
    ),
}


@pytest.mark.parametrize("away", AWAY)
def test_a_leader_that_goes_away_hands_over_and_catches_up_when_it_is_back(context, away):
    """A frozen background leader, or one kept in the back/forward cache, would hold the lock and starve
    the others: the helper lets go on ``freeze`` and ``pagehide``. Back (``resume``, ``pageshow``), the tab
    follows again and gets what it missed from the new leader's history: its ids stay consecutive."""
    leave, come_back = AWAY[away]
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)
    CLOCK_STREAMS.peak = 0
    pages = open_tabs(context, 3)
    leader = leader_of(pages)
    others = [page for page in pages if page is not leader]
    leader.evaluate(leave)
    for page in others:
        wait_count(page, int(panel(page)["count"]) + 5)
    assert leader_of(others) in others
    assert panel(leader)["state"] == "paused"
    missed_from = int(panel(leader)["last"])
    leader.evaluate(come_back)
    leader.wait_for_function(f"Number({PANEL}.last) >= {int(panel(others[0])['last']) + 2}", timeout=10_000)
    assert panel(leader)["role"] == "follower"
    assert int(panel(others[0])["last"]) > missed_from + 5
    for page in pages:
        assert_consecutive(page)
    assert CLOCK_STREAMS.peak <= 2
    for page in pages:
        page.close()
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)


def test_a_leader_that_stops_answering_has_its_lock_taken(context):
    """A leader stuck without a ``freeze`` event (here: paused in the debugger) is replaced by the
    watchdog of a follower; when it runs again it steps down, and no tab sees a gap or a duplicate."""
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)
    pages = open_tabs(context, 2)
    leader = leader_of(pages)
    [other] = [page for page in pages if page is not leader]
    cdp = context.new_cdp_session(leader)
    cdp.send("Debugger.enable")
    cdp.send("Debugger.pause")
    other.wait_for_function(f"{PANEL}.role === 'leader'", timeout=10_000)
    wait_count(other, int(panel(other)["count"]) + 3)
    cdp.send("Debugger.resume")
    leader.wait_for_function(f"{PANEL}.role === 'follower'", timeout=10_000)
    wait_count(leader, int(panel(leader)["count"]) + 3)
    for page in pages:
        assert_consecutive(page)
    assert wait_streams(lambda: CLOCK_STREAMS.open == 1)  # the stuck leader's stream was closed
    for page in pages:
        page.close()
    assert wait_streams(lambda: CLOCK_STREAMS.open == 0)
