"""ASGI messages built by hand, for tests that play the server themselves."""

from __future__ import annotations

from typing import Any


def http_scope(path: str, query: str = "") -> dict[str, Any]:
    """An ASGI HTTP scope for a GET of ``path?query``, as a server on 127.0.0.1 would pass it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
