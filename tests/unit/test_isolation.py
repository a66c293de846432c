"""No test sees the state an earlier one left in the process (tests/conftest.py's ``fresh_registries``).

The first test leaves each of dualstream's per-process registries dirty, as a test that fails
half-way would; the tests after it, run in file order, find each one fresh. Without the fixture
each of them fails. They prove something only after the first, so they fail if run without it.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest
from django.core.signals import request_finished
from django.test import Client, override_settings

from dualstream import end_streams, lifecycle, stream_finished
from dualstream.broadcast import history, publish
from dualstream.broadcast.backends import get_backend

# One kind of database use for all, or pytest-django would run the ones that close a response (which
# sends request_finished, which looks at the connections) before the others, and so before the first.
pytestmark = pytest.mark.django_db

INTERRUPT_HANDLER = signal.getsignal(signal.SIGINT)  # as pytest runs the suite
LEFT: dict[str, Any] = {"heard": []}


@pytest.fixture
def after_the_dirty_test() -> None:
    assert "backend" in LEFT, "run test_a_test_leaves_every_registry_dirty first: this test checks what it left"


def heard(**kwargs: Any) -> None:
    LEFT["heard"].append(kwargs.get("signal"))


def test_a_test_leaves_every_registry_dirty() -> None:
    async def open_stream_and_chain_handlers() -> None:
        lifecycle.streams.add(object())  # type: ignore[arg-type]  # a stream that never ended
        lifecycle.streams.chain_shutdown_handlers()  # as the first stream of a process does

    end_streams()  # the process is stopping: streams are refused from now on
    asyncio.run(open_stream_and_chain_handlers())
    LEFT["backend"] = get_backend()
    publish("isolation", {"left": True})
    stream_finished.connect(heard, weak=False)
    request_finished.connect(heard, weak=False)
    assert signal.getsignal(signal.SIGINT) is not INTERRUPT_HANDLER


def test_the_next_test_may_open_a_stream_not_counting_the_earlier_ones(after_the_dirty_test: None) -> None:
    with override_settings(DUALSTREAM={"MAX_STREAMS": 1}):
        response = Client().get("/count/?n=2&stream=1")  # refused with a 503 while stopping, or with one open
        body = b"".join(response)
        response.close()
    assert response.status_code == 200, body
    assert not lifecycle.streams.stopping and len(lifecycle.streams) == 0


def test_the_next_test_gets_a_backend_of_its_own_without_the_earlier_events(after_the_dirty_test: None) -> None:
    assert get_backend() is not LEFT["backend"]
    assert asyncio.run(history("isolation")) == []


def test_the_earlier_tests_receivers_are_gone(after_the_dirty_test: None) -> None:
    response = Client().get("/count/?n=1&stream=1")  # sends stream_finished, then request_finished
    b"".join(response)
    response.close()
    assert LEFT["heard"] == []


def test_the_signal_handlers_are_the_ones_before_the_earlier_test(after_the_dirty_test: None) -> None:
    assert signal.getsignal(signal.SIGINT) is INTERRUPT_HANDLER
