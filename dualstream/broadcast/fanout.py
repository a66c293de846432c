"""The in-process fan-out: each delivery handed to every subscriber of its topic, on every event loop.

The fan-out owns this process's backend: it asks it to follow and unfollow
topics, and the backend hands what it reads to ``Fanout.deliver()``, its one
callback (``Backend.deliver``), from whichever thread it reads in.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .errors import SubscriptionOverflow

if TYPE_CHECKING:
    from .backends.base import Backend, Delivery, Item


class Inbox:
    """One subscriber's bounded queue of live events; filled and read in the subscriber's event loop."""

    __slots__ = ("closed", "error", "items", "limit", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self.loop = loop
        self.limit = limit
        self.items: deque[Item] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False  # set by the subscriber, from any thread: deliveries skip it and drop it
        self.error: BaseException | None = None

    def push(self, items: list[Item]) -> None:
        if self.error is not None:
            return
        if len(self.items) + len(items) > self.limit:
            # A slow subscriber must not hold memory or the others back: it ends and resumes by replay.
            self.items.clear()
            self.fail(SubscriptionOverflow())
            return
        self.items.extend(items)
        self.wake()

    def fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Topic:
    __slots__ = ("count", "loops", "ready")

    def __init__(self, ready: concurrent.futures.Future[None]) -> None:
        self.count = 0
        self.loops: dict[asyncio.AbstractEventLoop, set[Inbox]] = {}
        self.ready = ready


class Fanout:
    """This process's subscribers by topic and event loop; hands each delivery to every loop in publish order.

    Deliveries always go through ``call_soon_threadsafe``, even to the caller's own loop: callbacks run
    in the order they were scheduled, so events published from several threads reach every subscriber
    in id order. Each loop's set of inboxes is changed and read only in that loop's thread.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._topics: dict[str, _Topic] = {}
        backend.deliver = self.deliver

    def attach(self, topic: str, inbox: Inbox) -> concurrent.futures.Future[None]:
        """Register ``inbox`` (from its loop's thread); the future resolves when the topic is followed."""
        with self._lock:
            state = self._topics.get(topic)
            if state is None:
                state = self._topics[topic] = _Topic(self.backend.follow(topic))
            state.count += 1
            state.loops.setdefault(inbox.loop, set()).add(inbox)
            return state.ready

    def detach(self, topic: str, inbox: Inbox) -> None:
        """Unregister ``inbox`` (from its loop's thread); the last one out stops following the topic."""
        inbox.closed = True
        with self._lock:
            state = self._topics.get(topic)
            inboxes = state.loops.get(inbox.loop) if state else None
            if state is None or inboxes is None or inbox not in inboxes:
                return
            inboxes.discard(inbox)
            if not inboxes:
                del state.loops[inbox.loop]
            state.count -= 1
            if state.count:
                return
            del self._topics[topic]
            state.ready.cancel()
        self.backend.unfollow(topic)

    def deliver(self, topic: str, delivery: Delivery) -> None:
        """Hand ``delivery`` to every subscriber of ``topic`` in this process, from any thread: the backend's callback.

        New items, in id order; or an error that ends each subscriber's stream (the engine stayed away too long).
        """
        with self._lock:
            state = self._topics.get(topic)
            if state is None:
                return
            targets = list(state.loops.items())
        for loop, inboxes in targets:
            try:
                loop.call_soon_threadsafe(self._push, topic, inboxes, delivery)
            except RuntimeError:  # that loop is closed: its subscribers are gone
                for inbox in list(inboxes):
                    self.detach(topic, inbox)

    def topics(self) -> Iterable[str]:
        with self._lock:
            return list(self._topics)

    def _push(self, topic: str, inboxes: set[Inbox], delivery: Delivery) -> None:
        dropped = []
        for inbox in list(inboxes):
            if inbox.closed:
                dropped.append(inbox)
            elif isinstance(delivery, BaseException):
                inbox.fail(delivery)
            else:
                inbox.push(delivery)
        for inbox in dropped:  # subscriptions dropped without being closed (see Subscription.__del__)
            self.detach(topic, inbox)
