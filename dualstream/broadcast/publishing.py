"""``publish()`` for sync code, ``apublish()`` and ``history()`` for async code."""

from __future__ import annotations

import asyncio
from typing import Any

from ..events import Event
from .backends import get_backend
from .topics import check_event_name, check_topic, encode_data


def publish(topic: str, data: Any, event: str | None = None) -> str:
    """Publish ``data`` (JSON-serialisable) to every subscriber of ``topic``, on every process; return its id.

    For sync code: views, signal handlers, management commands, Celery tasks. Inside a running
    event loop it raises ``RuntimeError`` (it would block the loop on a network round trip): there,
    ``await apublish(...)``. Raises ``BroadcastUnavailable`` if the engine cannot be reached.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("publish() would block this event loop: in async code, use 'await apublish(...)'.")
    return get_backend().publish_sync(check_topic(topic), encode_data(data), check_event_name(event))


async def apublish(topic: str, data: Any, event: str | None = None) -> str:
    """``publish()`` for async code."""
    return await get_backend().publish(check_topic(topic), encode_data(data), check_event_name(event))


async def history(topic: str, limit: int = 100) -> list[Event]:
    """The latest ``limit`` events of ``topic`` that the engine still holds, oldest first."""
    return [event for _, event in await get_backend().history(check_topic(topic), limit)]
