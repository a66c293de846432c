"""One process, no engine: each topic's recent events in a bounded ring, for development and tests.

Ids are ``"<boot>-<n>"``: ``boot`` is when this backend was built (milliseconds), so an id from
before a restart is unknown (a ``reset``), never mistaken for a new event with the same number.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from .base import Backend, Item, make_item


class MemoryBackend(Backend):
    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self._boot = time.time_ns() // 1_000_000
        self._maxlen = int(self.options["MAXLEN"])
        self._lock = threading.Lock()
        self._rings: dict[str, deque[Item]] = {}
        self._counts: dict[str, int] = {}

    async def publish(self, topic: str, data: str, event: str | None) -> str:
        return self.publish_sync(topic, data, event)

    def publish_sync(self, topic: str, data: str, event: str | None) -> str:
        with self._lock:  # the id, the ring and the delivery order agree
            n = self._counts[topic] = self._counts.get(topic, 0) + 1
            item = make_item(f"{self._boot}-{n}", data, event)
            ring = self._rings.get(topic)
            if ring is None:
                ring = self._rings[topic] = deque(maxlen=self._maxlen)
            ring.append(item)
            self.deliver(topic, [item])
        return str(item[1].id)

    async def history(self, topic: str, limit: int) -> list[Item]:
        with self._lock:
            ring = self._rings.get(topic, ())
            return list(ring)[max(0, len(ring) - limit) :]

    async def read_after(self, topic: str, after: str, limit: int) -> tuple[list[Item], str | None] | None:
        key = self.parse_id(after)
        with self._lock:
            ring = list(self._rings.get(topic, ()))
        if key is None or key[0] != self._boot:
            return None
        keys = [k for k, _ in ring]
        i = bisect.bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            return None
        page = ring[i + 1 : i + 1 + limit]
        return page, (str(page[-1][1].id) if len(page) == limit else None)

    def follow(self, topic: str) -> concurrent.futures.Future[None]:
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        ready.set_result(None)  # publish_sync delivers to every attached subscriber
        return ready

    def unfollow(self, topic: str) -> None:
        pass
