"""Scenario F's broadcast: one topic in each server process, fed by a ticker inside that process.

The three servers without a broadcast of their own (bare ASGI, sse-starlette, naive Django) share
``Hub``: a module-level set of bounded ``asyncio.Queue``s, one per subscriber, each published event's
JSON text put in every one. dualstream uses its own (``TopicView``, ``apublish``, memory backend).

``publish?rate=R&n=N`` runs ``ticker()`` in the request: N events at R a second, each ``payloads.tick(i)``,
then answers ``{"published": N, "seconds": ..., "subscribers": ...}``. Bounded: at most ``MAX_SECONDS``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import payloads

#: The one topic every server's ``topic`` endpoint streams (a valid dualstream topic name).
TOPIC = "bench"
DEFAULT_RATE = 20.0
MAX_RATE = 10_000.0
#: The longest a ticker runs: ``n`` is cut to ``rate * MAX_SECONDS``.
MAX_SECONDS = 120.0
#: Events that may wait for one subscriber; beyond it, its stream ends (as dualstream's BROADCAST BUFFER).
QUEUE_SIZE = 1_000

Queue = asyncio.Queue[str | None]  # JSON text; None ends the stream


class Hub:
    """This process's subscribers of the one topic: a bounded queue each, fed by ``publish()``."""

    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.size = size
        self.queues: set[Queue] = set()

    def __len__(self) -> int:
        return len(self.queues)

    def subscribe(self) -> Queue:
        queue: Queue = asyncio.Queue(self.size + 1)  # one place more, for the None that ends it
        self.queues.add(queue)
        return queue

    def unsubscribe(self, queue: Queue) -> None:
        self.queues.discard(queue)

    def end(self, queue: Queue) -> None:
        """Unsubscribe ``queue`` and end its stream once it has sent what it holds."""
        self.queues.discard(queue)
        try:
            queue.put_nowait(None)
        except asyncio.QueueFull:  # ended already
            pass

    def publish(self, text: str) -> None:
        for queue in list(self.queues):
            if queue.qsize() >= self.size:
                self.end(queue)  # a subscriber that fell too far behind must not hold memory
            else:
                queue.put_nowait(text)


HUB = Hub()


def ticker_params(query: str | bytes | Mapping[str, Any]) -> tuple[float, int]:
    """``(rate, n)`` from a query string or mapping: ``rate`` in ``(0, MAX_RATE]``, ``n`` bounded by ``MAX_SECONDS``."""
    query = payloads.params(query)
    try:
        rate = float(query.get("rate", DEFAULT_RATE))
    except (TypeError, ValueError):
        rate = DEFAULT_RATE
    if not 0 < rate <= MAX_RATE:  # NaN too
        rate = DEFAULT_RATE
    n = min(payloads.count(query, default=0), int(rate * MAX_SECONDS))
    return rate, n


async def ticker(publish: Callable[[dict[str, Any]], Awaitable[object]], rate: float, n: int) -> dict[str, float]:
    """Publish ``payloads.tick(i)`` for ``i`` in ``range(n)``, at ``rate`` a second on a fixed schedule (no drift)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    started = time.perf_counter()
    for i in range(n):
        await publish(payloads.tick(i))
        delay = t0 + (i + 1) / rate - loop.time()
        if delay > 0 and i + 1 < n:
            await asyncio.sleep(delay)
    return {"published": n, "seconds": time.perf_counter() - started}


async def publish_to_hub(data: dict[str, Any]) -> None:
    """What the queue servers publish: the JSON text, encoded once for every subscriber."""
    HUB.publish(json.dumps(data))


async def run_hub_ticker(query: str | bytes | Mapping[str, Any]) -> dict[str, float]:
    """The queue servers' ``publish`` endpoint: the ticker into ``HUB``; its answer, with the subscriber count."""
    rate, n = ticker_params(query)
    result = await ticker(publish_to_hub, rate, n)
    result["subscribers"] = len(HUB)
    return result
