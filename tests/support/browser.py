"""What the browser tests share: where Chromium is, the fake origin that serves dualstream.js, the demo's streams."""

from __future__ import annotations

import contextlib
import os

from project.demo.tabs import CLOCK_STREAMS
from tests.support.paths import ROOT

CHROMIUM = os.environ.get("DUALSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # runs as root in a container: Chromium's sandbox refuses to start otherwise
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ORIGIN = "http://dualstream.test"
MODULE_PATH = "/static/dualstream/dualstream.js"
MODULE_FILE = ROOT / "dualstream" / "static" / "dualstream" / "dualstream.js"


@contextlib.contextmanager
def fake_origin_page(browser):
    """A page on ``ORIGIN`` that serves dualstream.js at ``MODULE_PATH``; any other origin is refused."""
    context = browser.new_context(service_workers="block")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def other_origins(route):
        route.abort()

    def fake_origin(route):
        path = route.request.url[len(ORIGIN) :].split("?", 1)[0]
        if path == "/":
            route.fulfill(
                status=200,
                content_type="text/html; charset=utf-8",
                body="<!doctype html><meta charset=utf-8><title>dualstream test</title>",
            )
        elif path == MODULE_PATH:
            route.fulfill(
                status=200, content_type="text/javascript; charset=utf-8", body=MODULE_FILE.read_text(encoding="utf-8")
            )
        else:
            route.fulfill(status=404, content_type="text/plain", body="not routed")

    # Routes are matched last-registered first, and page routes before context routes:
    # tests' own ``page.route`` calls take precedence over these.
    context.route("**/*", other_origins)
    context.route(f"{ORIGIN}/**", fake_origin)
    page.goto(f"{ORIGIN}/")
    page.uncaught_errors = errors  # JS exceptions reported on the page (e.g. from callbacks)
    try:
        yield page
    finally:
        context.close()


def wait_streams(condition, timeout: float = 10.0) -> bool:
    """Wait until ``condition()`` holds of the demo's clock streams (``CLOCK_STREAMS``), which the server changes."""
    with CLOCK_STREAMS.changed:
        return CLOCK_STREAMS.changed.wait_for(condition, timeout)


def requests_to(page, path: str) -> list:
    """The requests the page sends to ``path``, each one recorded before it leaves the browser.

    A route holds the request until its handler has run, so a request whose answer the page has seen
    is in the list. The ``request`` event gives no such order: under load it reached Python after
    ``evaluate`` had returned with the answers to the requests it announced.
    """
    sent: list = []

    def record(route) -> None:
        sent.append(route.request)
        route.continue_()

    page.route(f"**{path}*", record)
    return sent
