"""Broadcast test support: settings on each engine, a Redis behind a fault proxy, reading a subscription.

The fixtures on them (``engine``, ``proxy``) are tests/conftest.py's.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.test import override_settings

from dualstream import Event
from dualstream.broadcast import subscribe

from .broadcast_proxy import Proxy

REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
RUN_PREFIX = f"dualstream-test:{uuid.uuid4().hex[:8]}:"
#: The topic views of tests/support/broadcast_urls.py, for ``override_settings``.
TOPIC_URLS = {"ROOT_URLCONF": "tests.support.broadcast_urls"}


def redis_reason() -> str | None:
    if not REDIS_URL:
        return "TEST_REDIS_URL is not set"
    try:
        import redis
    except ImportError:
        return "the redis package is not installed"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        return f"Redis at TEST_REDIS_URL does not answer: {exc}"
    return None


def drop_run_keys() -> None:
    """Delete what this run wrote to Redis: every key under ``RUN_PREFIX``."""
    if redis_reason() is None:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=RUN_PREFIX + "*"):
            client.delete(key)


def broadcast_settings(backend: str, **extra: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {"BACKEND": backend, "TIMEOUT": 2.0, **extra}
    if backend == "redis":
        opts.setdefault("URL", REDIS_URL)
        opts["PREFIX"] = RUN_PREFIX + uuid.uuid4().hex[:6] + ":"  # each test on its own keys
    return {"BROADCAST": opts}


def configure(engine: str, **extra: Any) -> override_settings:
    return override_settings(DUALSTREAM=broadcast_settings(engine, **extra))


async def take(events: AsyncIterator[Event], n: int, timeout: float = 10.0) -> list[Event]:
    async def collect() -> list[Event]:
        out = []
        async for event in events:
            out.append(event)
            if len(out) == n:
                break
        return out

    return await asyncio.wait_for(collect(), timeout)


async def joined(topic: str, **kwargs: Any) -> tuple[Any, asyncio.Task[Event]]:
    """A subscription whose first read is in flight: once a publish after this is delivered, it holds it."""
    sub = subscribe(topic, **kwargs)
    first = asyncio.ensure_future(sub.__anext__())
    while sub._inbox is None or not sub._joined:  # joined: attached and followed
        await asyncio.sleep(0)
        if first.done():
            break
    return sub, first


def via(proxy: Proxy) -> str:
    return REDIS_URL.replace(f":{urlsplit(REDIS_URL).port or 6379}", f":{proxy.port}", 1)


@contextmanager
def direct_backend(settings: dict[str, Any]) -> Iterator[Any]:
    """A Redis backend on the same keys as ``settings`` but straight to Redis: a publisher the proxy does not cut."""
    from dualstream.broadcast.backends.redis import RedisBackend
    from dualstream.broadcast.conf import DEFAULTS

    backend = RedisBackend({**DEFAULTS, **settings["BROADCAST"], "URL": REDIS_URL})
    try:
        yield backend
    finally:
        backend.close()


def sse_lines(response: httpx.Response, stop: threading.Event | None = None) -> Iterator[dict[str, str]]:
    """Events as dicts of their fields (comments skipped), until the stream ends or ``stop`` is set."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if stop is not None and stop.is_set():
            return
        if not line:
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Wait until ``condition()`` is true, checking on each of this thread's short waits."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not met in time")
