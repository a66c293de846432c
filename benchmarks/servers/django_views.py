"""The two Django servers' views: a naive ``StreamingHttpResponse`` and a dualstream ``DualModeView``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse

from . import payloads

Make = Callable[[int], dict[str, Any]]


# Naive: an async generator of "data: ...\n\n" strings, json.dumps per event.


def naive(make: Make, delay: float | None) -> Callable[[HttpRequest], Any]:
    async def view(request: HttpRequest) -> StreamingHttpResponse:
        n = payloads.count(request.GET)

        async def events() -> AsyncIterator[str]:
            for i in range(n):
                yield f"data: {json.dumps(make(i))}\n\n"
                if delay is not None:
                    await asyncio.sleep(delay)

        return StreamingHttpResponse(events(), content_type="text/event-stream")

    return view


# dualstream: produce() yields plain dicts; requested with ?stream=1. Heartbeat and all else at defaults.


def dualstream_view(make: Make, delay: float | None) -> Callable[..., Any]:
    from dualstream import DualModeView

    class Stream(DualModeView):
        async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            n = payloads.count(request.GET)
            for i in range(n):
                yield make(i)
                if delay is not None:
                    await asyncio.sleep(delay)

    return Stream.as_view()
