"""The two Django servers' views: a naive ``StreamingHttpResponse`` and a dualstream ``DualModeView``.

Scenario F's broadcast: the naive server streams the queues of ``topic.py``; dualstream its ``TopicView``
on the memory backend (``django_settings.py``), published with ``apublish()``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse

from . import payloads, topic

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


# Scenario F: one topic, published by a ticker in this process (``publish?rate=R&n=N``).


async def naive_topic(request: HttpRequest) -> StreamingHttpResponse:
    """Subscribed before the response starts; ``data: <JSON text>`` per event from its queue."""
    queue = topic.HUB.subscribe()

    async def events() -> AsyncIterator[str]:
        try:
            while (text := await queue.get()) is not None:
                yield f"data: {text}\n\n"
        finally:
            topic.HUB.unsubscribe(queue)

    return StreamingHttpResponse(events(), content_type="text/event-stream")


async def naive_publish(request: HttpRequest) -> JsonResponse:
    return JsonResponse(await topic.run_hub_ticker(request.GET))


def dualstream_topic() -> Callable[..., Any]:
    """``TopicView`` as it comes: requested with ``?stream=1``, it subscribes before its headers go out."""
    from dualstream.broadcast import TopicView

    return TopicView.as_view(topic=topic.TOPIC)


async def dualstream_publish(request: HttpRequest) -> JsonResponse:
    from dualstream.broadcast import apublish

    rate, n = topic.ticker_params(request.GET)
    return JsonResponse(await topic.ticker(lambda data: apublish(topic.TOPIC, data), rate, n))
