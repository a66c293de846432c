"""A hand-written ASGI app: one ``send()`` of ``data: ...\\n\\n`` per event, nothing else.

The practical limit for uvicorn: no framework, no encoder objects, no buffering.
It still encodes each event with ``json.dumps``, as the others do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from . import gcstats, payloads  # noqa: F401  (gcstats: GC pauses on SIGUSR1)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


def _chunk(data: dict[str, Any]) -> Message:
    return {"type": "http.response.body", "body": f"data: {json.dumps(data)}\n\n".encode(), "more_body": True}


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"].rstrip("/").rsplit("/", 1)[-1]
    if path not in ("fast", "burst", "tick"):
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    n = payloads.count(scope["query_string"])
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    if path == "fast":
        for i in range(n):
            await send(_chunk(payloads.small(i)))
    elif path == "burst":
        for i in range(n):
            await send(_chunk(payloads.burst(i)))
    else:
        await _ticks(n, receive, send)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _ticks(n: int, receive: Receive, send: Send) -> None:
    """One event a second until ``n`` are sent or the client leaves (uvicorn's send() ignores a gone client)."""
    disconnected = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        for i in range(n):
            await send(_chunk(payloads.tick(i)))
            await asyncio.wait([disconnected], timeout=payloads.TICK_SECONDS)
            if disconnected.done():
                return
    finally:
        disconnected.cancel()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
