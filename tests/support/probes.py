"""Shared state between the test views (running in the live server's thread) and the tests.

Each test passes a fresh ``probe`` token; the view reports what happened to
its producer through the ``Probe`` registered under that token.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class Probe:
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # produce()'s finally ran
    produced: int = 0
    produced_at: list[float] = field(default_factory=list)
    exit: str = ""  # how produce() ended: "returned", "cancelled", "closed", or an exception name

    @contextmanager
    def running(self) -> Iterator[None]:
        """Wrap a producer's body: records how it ended, and that its ``finally`` ran."""
        self.started.set()
        try:
            with exit_recorded(self):
                yield
        finally:
            self.finished.set()

    def count(self) -> None:
        """One more item produced, now."""
        self.produced += 1
        self.produced_at.append(time.monotonic())


class Exits(Protocol):
    exit: str


@contextmanager
def exit_recorded(record: Exits) -> Iterator[None]:
    """Set ``record.exit`` to how the wrapped producer body ended: "returned", "cancelled", "closed", or the exception's name."""
    try:
        yield
        record.exit = "returned"
    except asyncio.CancelledError:
        record.exit = "cancelled"
        raise
    except GeneratorExit:
        record.exit = "closed"
        raise
    except Exception as exc:
        record.exit = type(exc).__name__
        raise


_probes: dict[str, Probe] = {}
_lock = threading.Lock()


def new_probe() -> tuple[str, Probe]:
    token = uuid.uuid4().hex
    with _lock:
        probe = _probes[token] = Probe()
    return token, probe


def get_probe(token: str | None) -> Probe:
    with _lock:
        return _probes.setdefault(token or "", Probe())


async def tasks_left(timeout: float = 5.0) -> list[asyncio.Task[Any]]:
    """The other tasks of this loop that are still running after ``timeout`` (the producer reports its end
    from its own ``finally``, so it may take a last step after the report)."""
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if not others:
        return []
    _, pending = await asyncio.wait(others, timeout=timeout)
    return list(pending)


#: Set by a test in the task that drives its requests: the signal receivers it connects run in a copy
#: of that context (its request's thread, its stream's task), so they can tell its requests from the
#: live server's, where another test's stream may end late while this one runs.
in_this_test: ContextVar[bool] = ContextVar("in_this_test", default=False)
