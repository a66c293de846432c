"""The pump's cost does not grow with the number of items: no task or future per item.

Merging heartbeats with items by wrapping each ``__anext__()`` in a task (or a
future, as ``asyncio.wait_for`` does) costs one per item; the pump runs
``produce()`` in one task and waits only when there is nothing to write.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from dualstream.encoding import compact_dumps
from dualstream.renderers import SSERenderer
from dualstream.streaming import Pump

ITEMS = 20_000  # about 400 KB of events: the 64 KiB buffer fills and drains several times


async def _never_fails(exc: Exception) -> str | None:
    raise AssertionError(f"produce() failed: {exc!r}")


async def _stream_counting(items: AsyncIterator[Any]) -> tuple[bytes, int, int]:
    """The whole body of a pump with heartbeats on, and how many tasks and futures the loop made meanwhile."""
    loop = asyncio.get_running_loop()
    counts = {"tasks": 0, "futures": 0}
    create_future = loop.create_future

    def counting_future() -> asyncio.Future[Any]:
        counts["futures"] += 1
        return create_future()

    def counting_task(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        counts["tasks"] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.create_future = counting_future  # type: ignore[method-assign]
    loop.set_task_factory(counting_task)
    try:
        pump = Pump(
            items,  # type: ignore[arg-type]
            SSERenderer(compact_dumps(json.JSONEncoder)),
            heartbeat=15.0,
            buffer_size=64 * 1024,
            on_error=_never_fails,
        )
        await pump.prime(15.0)
        body = b"".join([chunk async for chunk in pump.chunks()])
    finally:
        loop.set_task_factory(None)
        del loop.create_future
    return body, counts["tasks"], counts["futures"]


def test_a_long_stream_costs_one_task_and_a_future_per_write_not_per_item() -> None:
    async def produce() -> AsyncIterator[dict[str, int]]:
        for i in range(ITEMS):
            yield {"i": i}

    body, tasks, futures = asyncio.run(_stream_counting(produce()))

    assert body.count(b"data: {") == ITEMS
    assert body.endswith(b"event: done\nid: dualstream-completed\ndata: \n\n")
    assert tasks == 1  # the producer
    # Futures only where one side waits for the other: per write of up to 64 KiB, not per item.
    writes = len(body) // (64 * 1024) + 1
    assert futures <= 2 * writes + 2, (futures, writes)


def test_a_paced_producer_costs_one_wait_per_item_and_no_more() -> None:
    async def produce() -> AsyncIterator[dict[str, int]]:
        for i in range(200):
            yield {"i": i}
            await asyncio.sleep(0)  # the consumer catches up and waits for each item

    body, tasks, futures = asyncio.run(_stream_counting(produce()))

    assert body.count(b"data: {") == 200
    assert tasks == 1
    assert futures <= 200 + 2  # the consumer's one waiter per item it waits for: nothing wraps __anext__()
