"""A hand-written ASGI app: one ``send()`` of ``data: ...\\n\\n`` per event, nothing else.

The practical limit for uvicorn: no framework, no encoder objects, no buffering.
It still encodes each event with ``json.dumps``, as the others do.

``topic`` and ``publish`` are scenario F's broadcast (``topic.py``): each subscriber's coroutine takes
the JSON text from its queue and sends it, one ``send()`` per event: the "bare ASGI write".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from . import gcstats, payloads, topic  # noqa: F401  (gcstats: GC pauses on SIGUSR1)

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
    if path == "publish":
        body = json.dumps(await topic.run_hub_ticker(scope["query_string"])).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "topic":
        await _subscriber(receive, send)
        return
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


async def _subscriber(receive: Receive, send: Send) -> None:
    """Scenario F: subscribed before the headers go out, then one ``send()`` per event until the client leaves."""
    queue = topic.HUB.subscribe()
    watcher = asyncio.ensure_future(_end_on_disconnect(receive, queue))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        while (text := await queue.get()) is not None:
            await send({"type": "http.response.body", "body": f"data: {text}\n\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        topic.HUB.unsubscribe(queue)


async def _end_on_disconnect(receive: Receive, queue: topic.Queue) -> None:
    await _wait_disconnect(receive)
    topic.HUB.end(queue)


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
