"""Starlette with sse-starlette's ``EventSourceResponse`` (its default 15 s ping on).

``topic`` and ``publish``: scenario F's broadcast, the queues of ``topic.py`` behind an ``EventSourceResponse``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from . import gcstats, payloads, topic  # noqa: F401  (gcstats: GC pauses on SIGUSR1)


def _endpoint(make: Callable[[int], dict[str, Any]], delay: float | None) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> EventSourceResponse:
        n = payloads.count(request.query_params)

        async def events() -> AsyncIterator[dict[str, str]]:
            for i in range(n):
                yield {"data": json.dumps(make(i))}
                if delay is not None:
                    await asyncio.sleep(delay)

        return EventSourceResponse(events())

    return endpoint


async def subscriber(request: Request) -> EventSourceResponse:
    """Scenario F: subscribed before the response starts; each event's JSON text as its data."""
    queue = topic.HUB.subscribe()

    async def events() -> AsyncIterator[dict[str, str]]:
        try:
            while (text := await queue.get()) is not None:
                yield {"data": text}
        finally:
            topic.HUB.unsubscribe(queue)

    return EventSourceResponse(events())


async def publish(request: Request) -> JSONResponse:
    return JSONResponse(await topic.run_hub_ticker(request.query_params))


app = Starlette(
    routes=[
        Route("/fast", _endpoint(payloads.small, None)),
        Route("/burst", _endpoint(payloads.burst, None)),
        Route("/tick", _endpoint(payloads.tick, payloads.TICK_SECONDS)),
        Route("/topic", subscriber),
        Route("/publish", publish),
    ]
)
