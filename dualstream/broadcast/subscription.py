"""``subscribe()``: replay after the client's last id, then live events, with no gap and no duplicate.

The subscriber joins the live fan-out *before* it reads the replay, so an event published meanwhile
is in both; live events are then skipped up to the last id already yielded (ids sort in publish order).
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from ..events import Event
from ..pump import parked
from .backends import RESET, Fanout, Inbox, Item, Key, get_fanout, reset_event
from .conf import options
from .errors import BroadcastUnavailable
from .topics import check_topic

#: Events one replay read fetches from the engine.
REPLAY_PAGE = 500


def subscribe(topic: str, *, last_event_id: str | None = None, recent: int = 0) -> Subscription:
    """The events of ``topic``: those after ``last_event_id`` (else the ``recent`` latest ones), then live ones.

    Use it with ``async for``; ``async with subscribe(...) as events`` also leaves the topic at once when
    the block exits. An id the topic no longer holds (too old, unknown, malformed) gives one ``reset``
    event, then live events; so does any point where the engine cannot prove that no event is missing
    (trimmed while this process could not read, deleted, undecodable). ``SubscriptionOverflow`` ends a
    subscriber that fell too far behind; ``BroadcastUnavailable`` one whose engine stayed away.
    """
    return Subscription(check_topic(topic), last_event_id=last_event_id, recent=recent)


class Subscription:
    """An async iterator of ``Event``; joins the topic on the first ``__anext__``."""

    def __init__(self, topic: str, *, last_event_id: str | None, recent: int) -> None:
        self.topic = topic
        self.last_event_id = last_event_id
        self.recent = recent
        self._fanout: Fanout | None = None
        self._inbox: Inbox | None = None
        self._pending: list[Item] = []  # fetched by replay, not yet yielded
        self._replay_after: str | None = None  # the next replay page starts after this id
        self._last: Key | None = None  # live events up to this key were yielded by replay
        self._closed = False
        self._joined = False
        self._reset = False  # the last event returned was a reset: the next one is not repeated

    def __aiter__(self) -> Subscription:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Leave the topic (idempotent)."""
        self._closed = True
        self._leave()

    def __del__(self) -> None:
        # Dropped without close() (``async for`` over it in a cancelled producer): leave the topic from the
        # subscriber's loop, where its inbox belongs; deliveries skip it meanwhile.
        inbox, fanout = self._inbox, self._fanout
        if inbox is None or fanout is None:
            return
        inbox.closed = True
        try:
            inbox.loop.call_soon_threadsafe(fanout.detach, self.topic, inbox)
        except RuntimeError:  # its loop is closed
            pass

    async def __anext__(self) -> Event:
        # One coroutine per event, no helper coroutine: whatever a stream keeps across its wait is new
        # for every event, and on a busy process it all reaches the collector's oldest generation.
        if self._closed:
            raise StopAsyncIteration
        try:
            if not self._joined:
                reset = await self._join()
                self._joined = True
                if reset is not None:
                    self._reset = True
                    return reset
            inbox = self._inbox
            assert inbox is not None
            while (event := self._ready(inbox)) is None:
                if self._replay_after is not None:
                    if not await self._read_page():  # trimmed while replaying: live events after what was yielded
                        event = reset_event(self.topic)
                        if not self._reset:
                            break
                    continue
                waiter = inbox.waiter = inbox.loop.create_future()
                try:
                    # In a stream, the request's thread may be given back here (dualstream/threads.py): it wakes
                    # the waiter early, and the loop waits again.
                    await parked(waiter)
                finally:
                    inbox.waiter = None
        except asyncio.CancelledError:
            # A cancelled read is most often a client gone: leave the topic now. A later read joins
            # again and replays from the last event returned, so nothing is lost either way.
            self._leave()
            raise
        except BaseException:
            self.close()
            raise
        self._reset = event.event == RESET  # a reserved name: no published event carries it
        if event.id is not None:
            self.last_event_id = str(event.id)
        return event

    def _leave(self) -> None:
        inbox, self._inbox = self._inbox, None
        if inbox is not None and self._fanout is not None:
            self._fanout.detach(self.topic, inbox)
        self._joined = False
        self._pending, self._replay_after, self._last = [], None, None

    async def _join(self) -> Event | None:
        fanout = self._fanout = self._fanout or get_fanout()
        opts = options()
        self._inbox = Inbox(asyncio.get_running_loop(), int(opts["BUFFER"]))
        ready = fanout.attach(self.topic, self._inbox)
        try:
            # Shielded: the future is shared by every subscriber of the topic in this process. asyncio.timeout(),
            # not wait_for(): on Python 3.11, wait_for can swallow a cancellation that arrives as it completes.
            async with asyncio.timeout(float(opts["TIMEOUT"])):
                await asyncio.shield(asyncio.wrap_future(ready))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = "the engine did not answer in time" if isinstance(exc, TimeoutError) else exc
            raise BroadcastUnavailable(f"cannot join topic {self.topic!r}: {reason}") from exc
        if self.last_event_id is not None:
            self._replay_after = self.last_event_id
            if not await self._read_page():
                return reset_event(self.topic)
        elif self.recent > 0:
            self._take(await fanout.backend.history(self.topic, self.recent))
        return None

    async def _read_page(self) -> bool:
        """Fetch the next replay page; False if the replay point is not in the topic any more."""
        assert self._fanout is not None and self._replay_after is not None
        after = self._replay_after
        backend = self._fanout.backend
        found = await backend.read_after(self.topic, after, REPLAY_PAGE)
        if found is None:
            self._replay_after = None
            return False
        page, self._replay_after = found
        self._last = backend.parse_id(after)  # a live event published before we joined is not news
        self._take(page)
        return True

    def _take(self, items: list[Item]) -> None:
        if items:
            self._last = items[-1][0]
            self._pending = items[::-1]  # popped from the end

    def _ready(self, inbox: Inbox) -> Event | None:
        """The next event already here: replayed, else live past the replay's overlap; None if there is none."""
        if inbox.error is not None:
            raise inbox.error
        while self._pending:
            event = self._pending.pop()[1]
            if not (self._reset and event.event == RESET):
                return event
        if self._replay_after is not None:
            return None  # the next replay page comes before any live event
        items = inbox.items
        while items:
            key, event = items.popleft()
            if self._last is not None:
                if key <= self._last:
                    continue  # replayed already
                self._last = None  # past the overlap: nothing older can follow
            if not (self._reset and event.event == RESET):
                return event
        return None
