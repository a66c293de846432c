"""dualstream/hypercorn_worker.py: finding hypercorn's shutdown event in a worker process, and watching it.

That the event is found and heard in a real worker is tests/e2e/test_servers.py's (the "hypercorn worker"
cases); here, the guard against a hypercorn that starts its workers differently, and the watch.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from types import SimpleNamespace
from typing import Any

import pytest

from dualstream import hypercorn_worker


def test_a_process_that_is_no_hypercorn_worker_has_no_event() -> None:
    assert hypercorn_worker.shutdown_event() is None


def hypercorn_target() -> None:
    """Stands for hypercorn's worker functions, which live in this module."""


hypercorn_target.__module__ = "hypercorn.asyncio.run"


def test_a_hypercorn_worker_that_was_given_no_event_is_warned_of(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    worker = SimpleNamespace(_target=hypercorn_target, _kwargs={"config": None, "sockets": None})
    monkeypatch.setattr(multiprocessing, "current_process", lambda: worker)
    assert hypercorn_worker.shutdown_event() is None
    assert "hypercorn -w 0" in caplog.text


def test_the_event_of_a_hypercorn_worker_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    event = multiprocessing.get_context("spawn").Event()
    worker = SimpleNamespace(_target=hypercorn_target, _kwargs={"shutdown_event": event})
    monkeypatch.setattr(multiprocessing, "current_process", lambda: worker)
    assert hypercorn_worker.shutdown_event() is event


def test_watch_calls_back_once_the_event_is_set() -> None:
    event = multiprocessing.get_context("spawn").Event()

    async def watched() -> list[Any]:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        calls: list[Any] = []

        def stop() -> None:
            calls.append(event.is_set())
            stopped.set()

        hypercorn_worker.watch(loop, event, stop)
        loop.call_later(3 * hypercorn_worker.POLL, event.set)  # as the main process would, a few looks later
        async with asyncio.timeout(5):
            await stopped.wait()
        return calls

    assert asyncio.run(watched()) == [True]
