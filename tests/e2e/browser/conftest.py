"""Fixtures for the browser tests: headless Debian Chromium driven by Playwright, no Django.

The module under test is served from a fake origin (``http://dualstream.test``) with
``page.route``, so no server runs and nothing leaves the machine. Fixture names are prefixed so
that they do not clash with the suite's own (tests/conftest.py).
"""

from __future__ import annotations

import os

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, MODULE_FILE, MODULE_PATH, fake_origin_page


@pytest.fixture(scope="module")
def chromium_browser():
    """One headless Chromium per test module; skipped when Chromium or Playwright is missing.

    Module scope, not session, on purpose: while Playwright's sync API is alive, its event loop
    counts as running in the main thread (it runs in a greenlet), so asgiref's ``async_to_sync``,
    and with it Django's test ``Client`` on async views, fails there with "You cannot use
    AsyncToSync in the same thread as an async event loop". The browser must be gone before the
    rest of the suite runs.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: run .ci/install-debian.sh chromium chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the Python package 'playwright' is not installed (pip install playwright)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def open_page(chromium_browser):
    """``open_page(base_url, **context_options)``: a fresh page on that origin; uncaught JavaScript errors fail the test."""
    contexts, errors = [], []

    def open_(base_url: str, **options):
        context = chromium_browser.new_context(base_url=base_url, service_workers="block", **options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    try:
        yield open_
        assert errors == [], f"uncaught JavaScript errors: {errors}"
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def dualstream_page(chromium_browser):
    """A fresh page on the fake origin that can ``await import(MODULE_PATH)``.

    Tests add their own routes with ``page.route`` for the URLs they stream from; anything else
    on the fake origin is a 404, and every other origin is refused.
    """
    with fake_origin_page(chromium_browser) as page:
        yield page


@pytest.fixture(scope="module")
def dualstream_shared_page(chromium_browser):
    """Like ``dualstream_page``, shared by a module's tests: for pure functions such as the parser."""
    with fake_origin_page(chromium_browser) as page:
        yield page


@pytest.fixture
def sse_loopback_server():
    """A tiny threaded HTTP server on 127.0.0.1 that writes scripted responses piece by piece.

    ``server.scripts[path] = fn(request) -> (status, content_type, [(bytes, delay_seconds), ...])``, where a
    delay may be a ``threading.Event`` to wait for instead;
    the body is sent in those pieces, flushed one by one, and ends when the connection closes
    (HTTP/1.0), which is how a cut stream looks. ``server.requests`` keeps what arrived, header
    names lower-cased: unlike ``page.route``, a real server sees every header, e.g. ``Last-Event-ID``.
    """
    import http.server
    import threading
    import time

    scripts: dict = {}
    requests: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _answer(self):
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            if path == "/":
                status, content_type, pieces = (
                    200,
                    "text/html; charset=utf-8",
                    [(b"<!doctype html><title>t</title>", 0)],
                )
            elif path == MODULE_PATH:
                status, content_type, pieces = 200, "text/javascript; charset=utf-8", [(MODULE_FILE.read_bytes(), 0)]
            elif path in scripts:
                requests.append(request)
                status, content_type, pieces = scripts[path](request)
            else:
                status, content_type, pieces = 404, "text/plain", [(b"not found", 0)]
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            try:
                for data, delay in pieces:
                    if isinstance(delay, threading.Event):
                        if not delay.wait(10):  # the test's go-ahead, which never came: cut the response
                            return
                    elif delay:
                        time.sleep(delay)
                    self.wfile.write(data)
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

        do_GET = do_POST = _answer

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.scripts = scripts
    server.requests = requests
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def loopback_page(chromium_browser, sse_loopback_server):
    """A page on the loopback server's origin (same origin as its streams: no CORS involved)."""
    context = chromium_browser.new_context(service_workers="block")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{sse_loopback_server.url}/")
    page.uncaught_errors = errors
    try:
        yield page
    finally:
        context.close()
