"""The ASGI path under a real uvicorn: its graceful-shutdown timeout cancelling an open stream."""

from __future__ import annotations

import logging

from dualstream.asgi import get_asgi_application as dualstream_asgi_application
from tests.support.probes import new_probe
from tests.support.rawhttp import raw_request, read_until
from tests.support.threadserver import serve


def test_uvicorns_graceful_shutdown_timeout_runs_the_producers_finally_and_logs_its_end_once() -> None:
    # uvicorn waits timeout_graceful_shutdown (2 s in serve()) for the open stream, cancels the request's
    # task and returns at once: the loop's teardown then cancels every task, Django's among them (dualstream's
    # own SIGTERM handling cuts streams before that window; this is the path without it). What holds even
    # then: produce()'s finally runs in its task before the server is gone, and the end is logged once, not as
    # "completed". (The stream_finished signal, sent after the log line, was seen cut by that teardown.)
    token, probe = new_probe()
    ends = Records()
    logger = logging.getLogger("dualstream")
    level = logger.level
    try:
        with serve(dualstream_asgi_application()) as url:  # uvicorn configures logging as it starts: then the handler
            logger.setLevel(logging.INFO)
            logger.addHandler(ends)
            sock = raw_request(url, f"/endless/?stream=1&probe={token}")  # read once, then never again
            read_until(sock, b"data: ")
        sock.close()
    finally:
        logger.removeHandler(ends)
        logger.setLevel(level)
    assert probe.finished.is_set() and probe.exit in ("cancelled", "closed")  # closed: paused on a full buffer
    # Its own stream's: another test's stream in the live server may end meanwhile.
    own = [r for r in ends.records if getattr(r, "request", None) and r.request.GET.get("probe") == token]  # type: ignore[attr-defined]
    assert [r.reason for r in own if r.getMessage().startswith("Stream ended")] == ["client_gone"]  # type: ignore[attr-defined]


class Records(logging.Handler):
    """The records of a logger, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
