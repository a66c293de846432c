"""The ASGI path with a scripted server: cases a real server rarely lines up on demand."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.asgi import get_asgi_application
from django.core.signals import request_finished

from .probes import new_probe


def scope(path: str, query: str) -> dict[str, Any]:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
        "root_path": "", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }


def test_a_disconnect_while_send_blocks_still_closes_produce_before_the_request_finishes() -> None:
    token, probe = new_probe()
    finished_first: list[bool] = []  # at request_finished: had produce()'s finally already run?

    def on_finished(**kwargs: Any) -> None:
        finished_first.append(probe.finished.is_set())

    async def scenario() -> None:
        app = get_asgi_application()
        body_sent = asyncio.Event()
        disconnected = asyncio.Event()
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is not None:
                return message
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                body_sent.set()
                await asyncio.Event().wait()  # a client that never reads: send() never returns

        served = asyncio.create_task(app(scope("/endless/", f"probe={token}&stream=1"), receive, send))
        await body_sent.wait()
        disconnected.set()
        await asyncio.wait_for(served, 5)

    request_finished.connect(on_finished, weak=False)
    try:
        asyncio.run(scenario())
    finally:
        request_finished.disconnect(on_finished)
    assert probe.exit in ("cancelled", "closed")
    assert finished_first == [True]
