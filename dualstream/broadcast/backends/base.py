"""The backend interface: the engine that stores each topic's recent events and tells this process of new ones.

Subclass ``Backend`` and implement its abstract methods: the ordering, replay and
fan-out rules (``subscription.py``, ``fanout.py``) come with it. Ids are
``"<int>-<int>"`` (Redis stream ids) unless ``parse_id`` is overridden; they must
increase with publish order within a topic.

What an engine must guarantee (docs/broadcast.md, "Guarantees"):

* ``publish``/``publish_sync`` append one event and return its id;
* ``read_after(topic, id, n)`` returns up to ``n`` events after ``id`` (and where the next page starts), or None
  when ``id`` is not an event the topic still holds (too old, unknown): the
  subscriber then gets a ``reset`` event;
* ``follow(topic)`` makes every event published afterwards reach
  ``self.deliver(topic, items)``, in id order, once; it resolves when that holds;
* ``self.deliver`` is the one way events reach subscribers: the fan-out (``fanout.py``)
  sets it, and calls ``follow``/``unfollow``; a backend never calls the fan-out otherwise;
* wherever it cannot prove that nothing was lost between two items it hands
  over (trimmed, deleted, undecodable), it puts ``reset_item()`` between them.
"""

from __future__ import annotations

import concurrent.futures
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from ...events import Event

#: An event id as a tuple that sorts in publish order.
Key = tuple[int, ...]
#: An event with its key: what backends hand to subscribers.
Item = tuple[Key, Event]
#: What a backend hands to ``deliver`` for a topic: new items in id order, or an error that ends its subscribers.
Delivery = list[Item] | BaseException
#: The named event a subscriber gets where it may have missed events: its state must be fetched anew.
RESET = "reset"
_ID_LIMIT = 1 << 64


def parse_id(event_id: str) -> Key | None:
    """``"1712-3"`` -> ``(1712, 3)``; None for anything else (never raises on client input)."""
    first, sep, second = event_id.partition("-")
    if not sep or not (0 < len(first) <= 20 and 0 < len(second) <= 20):
        return None
    if not (first.isascii() and first.isdigit() and second.isascii() and second.isdigit()):
        return None
    key = int(first), int(second)
    # Redis ids are two unsigned 64-bit numbers: a larger one is no id of ours, and Redis would refuse it.
    return key if key[0] < _ID_LIMIT and key[1] < _ID_LIMIT else None


def reset_event(topic: str) -> Event:
    """The ``reset`` a subscriber gets where it may have missed events of ``topic``."""
    return Event({"topic": topic}, event=RESET)


def reset_item(topic: str, key: Key) -> Item:
    """A ``reset`` where continuity cannot be proven: just before the item with ``key``."""
    return key, reset_event(topic)


def make_item(event_id: str, data: str, event: str | None) -> Item:
    """A stored event as subscribers get it: decoded once, shared by every subscriber, written as stored."""
    key = parse_id(event_id)
    assert key is not None, event_id
    return key, Event.from_json(data, event=event, id=event_id)


class Backend(ABC):
    """One engine connection per process; built once from the ``BROADCAST`` settings (``backends.get_backend``)."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)
        #: Where new events go, ``(topic, delivery)``, from any thread; set by the fan-out that owns this backend.
        self.deliver: Callable[[str, Delivery], None] = _unheard

    @abstractmethod
    async def publish(self, topic: str, data: str, event: str | None) -> str:
        """Append an event (``data`` is JSON text); return its id."""

    @abstractmethod
    def publish_sync(self, topic: str, data: str, event: str | None) -> str:
        """``publish`` for sync code, in any thread, without an event loop."""

    @abstractmethod
    async def history(self, topic: str, limit: int) -> list[Item]:
        """The latest ``limit`` events, oldest first."""

    @abstractmethod
    async def read_after(self, topic: str, after: str, limit: int) -> tuple[list[Item], str | None] | None:
        """Up to ``limit`` events after ``after``, oldest first, and the id the next page starts after (None: no
        more); None if ``after`` is not an event still held."""

    @abstractmethod
    def follow(self, topic: str) -> concurrent.futures.Future[None]:
        """Start delivering the topic's new events to ``self.deliver``; the future resolves once that holds."""

    @abstractmethod
    def unfollow(self, topic: str) -> None:
        """This process has no subscriber left on ``topic``."""

    def parse_id(self, event_id: str) -> Key | None:
        """A client's ``Last-Event-ID`` as a key, or None if it cannot be one of ours."""
        return parse_id(event_id)

    def close(self) -> None:
        """Release connections and threads (tests, shutdown)."""


def _unheard(topic: str, delivery: Delivery) -> None:
    """``deliver`` of a backend no fan-out owns (used alone, as a publisher): nobody here listens."""
