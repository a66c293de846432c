"""The ASGI path with a scripted server: cases a real server rarely lines up on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase
from django.test import override_settings

from .conftest import http_scope
from .probes import new_probe


class MarksStreamedChunks:
    """Replaces a streaming body with a wrapper around it, as GZipMiddleware does."""

    sync_capable = False
    async_capable = True
    MARK = b": wrapped\n"

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if response.streaming:
            response.streaming_content = self.marked(response.streaming_content)  # type: ignore[attr-defined]
        return response

    async def marked(self, content: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in content:
            yield self.MARK + chunk


@pytest.mark.parametrize("replaced", [False, True], ids=["own-body", "body-replaced-by-a-middleware"])
def test_a_disconnect_while_send_blocks_still_closes_produce_before_the_request_finishes(replaced: bool) -> None:
    middleware = [*settings.MIDDLEWARE, f"{__name__}.MarksStreamedChunks"] if replaced else settings.MIDDLEWARE
    token, probe = new_probe()
    bodies: list[bytes] = []
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
                bodies.append(message["body"])
                body_sent.set()
                await asyncio.Event().wait()  # a client that never reads: send() never returns

        served = asyncio.create_task(app(http_scope("/endless/", f"probe={token}&stream=1"), receive, send))
        await body_sent.wait()
        disconnected.set()
        await asyncio.wait_for(served, 5)

    request_finished.connect(on_finished, weak=False)
    try:
        with override_settings(MIDDLEWARE=middleware):
            asyncio.run(scenario())
    finally:
        request_finished.disconnect(on_finished)
    assert bodies[0].startswith(MarksStreamedChunks.MARK) is replaced
    assert probe.exit in ("cancelled", "closed")
    assert finished_first == [True]
