"""The pieces of the request thread's release: closing idle connections, and a parked producer's callback.

Through a live server (threads kept or given back, sessions on PostgreSQL) they are
tests/e2e/test_thread_release.py's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections, transaction

from dualstream.encoding import compact_dumps
from dualstream.pump import Pump, parked
from dualstream.renderers import SSERenderer
from dualstream.threads import close_idle_connections
from tests.support.databases import postgres_only


@pytest.mark.parametrize(
    "alias",
    [
        pytest.param("default", marks=pytest.mark.django_db(transaction=True)),
        pytest.param("postgres", marks=postgres_only),
    ],
)
def test_idle_connections_are_closed_but_not_in_a_transaction_or_with_a_cursor_open(alias: str) -> None:
    connection = connections[alias]
    for name in "abc":
        User.objects.db_manager(alias).create_user(name)
    with transaction.atomic(using=alias):
        User.objects.using(alias).count()
        assert not close_idle_connections()
    assert connection.connection is not None
    # Between two chunks, as aiterator() leaves it: a WITH HOLD cursor on PostgreSQL, a stepped statement on SQLite.
    rows = User.objects.using(alias).iterator(chunk_size=1)
    next(rows)
    assert not close_idle_connections()
    assert len(list(rows)) == 2  # the cursor survived
    assert close_idle_connections()
    if alias == "postgres":  # Django never closes SQLite's in-memory test database
        assert connection.connection is None


# The pump alone ---------------------------------------------------------------------------


def test_a_producer_parked_when_the_response_starts_calls_back_from_its_own_task_before_it_resumes() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        waiters: list[asyncio.Future[None]] = []
        wakes = 0
        calls: list[tuple[asyncio.Task[Any] | None, int]] = []
        called = asyncio.Event()

        async def on_started() -> None:
            calls.append((asyncio.current_task(), wakes))
            called.set()

        async def produce() -> AsyncIterator[Any]:
            nonlocal wakes
            while True:  # a subscription's wait: woken early, it finds nothing and waits again
                waiters.append(waiter := loop.create_future())
                await parked(waiter)
                wakes += 1

            yield  # an async generator that never yields

        pump = Pump(
            produce(),
            SSERenderer(compact_dumps(json.JSONEncoder)),
            keepalive=0.01,
            buffer_size=1 << 16,
            describe_error=_never,
            on_started=on_started,
        )
        await pump.prime()  # no item: the headers go once the keep-alive interval has passed
        body = pump.chunks()
        sending = asyncio.ensure_future(body.__anext__())
        await asyncio.wait_for(called.wait(), 5)
        assert calls == [(pump._task, 0)]  # from the producer task, while produce() was still parked
        await asyncio.wait_for(_until(lambda: len(waiters) == 2), 5)
        assert (wakes, len(calls)) == (1, 1)  # woken once, for the callback; then it waits again
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        await pump.aclose()

    asyncio.run(main())


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0)


async def _never(exc: Exception) -> dict[str, Any]:
    raise AssertionError(exc)
