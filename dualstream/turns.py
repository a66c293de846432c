"""Which turn of its event loop it is: how a producer tells the items it made in one go from an item it waited for.

A producer that writes its own items (``Pump.writes_to()``) writes one at once,
but items it makes without waiting in between belong in one write, as the
consumer coalesces them. Nothing in asyncio says whether a task has waited
since it last looked; this counter does, for every task of its loop, at the
cost of one callback per turn of the loop, not one per stream.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["Turns", "turns_of"]


class Turns:
    """A number that moves on once the tasks running now have all waited, at most once per turn of the loop.

    ``now()`` schedules the callback that moves it on, unless one is already
    scheduled. A task that waits after reading ``now()`` is resumed by a callback
    scheduled later than that one, which has therefore run: the task reads a
    new number. A task that has not waited reads the same.
    """

    __slots__ = ("_loop", "_next_scheduled", "count")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # weak: this is the value of a weak key, its loop
        self._next_scheduled = False
        self.count = 0

    def now(self) -> int:
        """This turn's number; a task reads another once it has waited."""
        if not self._next_scheduled:
            loop = self._loop()
            if loop is not None:
                self._next_scheduled = True
                loop.call_soon(self._next)
        return self.count

    def _next(self) -> None:
        self._next_scheduled = False
        self.count += 1


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Turns] = weakref.WeakKeyDictionary()


def turns_of(loop: asyncio.AbstractEventLoop) -> Turns:
    """The one counter of ``loop`` (from the loop's thread)."""
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = Turns(loop)
    return turns
