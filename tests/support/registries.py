"""The state dualstream keeps per process, made fresh for each test.

Left over, it would make a test's outcome depend on the ones before it: a stream still counted
against ``MAX_STREAMS``, a process marked as stopping (every stream then refused), a backend built on
another test's settings and still holding its connection, a receiver still connected, a SIGTERM
handler chained to a loop that is gone. Settings are not cached (``conf.Setting`` reads them on each
access), so there is no settings cache to clear.
"""

from __future__ import annotations

import signal
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.signals import got_request_exception, request_finished, request_started
from django.dispatch import Signal

from dualstream import lifecycle, stream_finished
from dualstream.broadcast.backends import close_backends

SIGNALS: tuple[Signal, ...] = (stream_finished, request_started, request_finished, got_request_exception)
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Saved:
    """What a test may change and must not keep: the signal handlers, and the receivers before it."""

    handlers: dict[int, Any]
    receivers: dict[Signal, list[Any]]


def start_test() -> Saved:
    """A fresh registry of open streams, and what to put back after the test."""
    fresh = lifecycle.Streams()
    for name, module in list(sys.modules.items()):  # every dualstream module that imported the registry
        if name.partition(".")[0] == "dualstream" and isinstance(getattr(module, "streams", None), lifecycle.Streams):
            module.streams = fresh
    return Saved(
        handlers={signum: signal.getsignal(signum) for signum in SHUTDOWN_SIGNALS},
        receivers={sig: list(sig.receivers) for sig in SIGNALS},
    )


def end_test(saved: Saved) -> None:
    """Close the broadcast backends, put the signal handlers back, disconnect the test's own receivers."""
    close_backends()
    for signum, handler in saved.handlers.items():
        signal.signal(signum, handler)
    for sig, before in saved.receivers.items():
        leaked = [entry for entry in sig.receivers if entry not in before and _is_tests(entry[1])]
        if leaked:
            with sig.lock:
                sig.receivers = [entry for entry in sig.receivers if entry not in leaked]
                sig.sender_receivers_cache.clear()
    redis = sys.modules.get("dualstream.broadcast.backends.redis")
    if redis is not None:
        redis._warned = redis._Warned()  # undecodable entries already reported: one warning each, per test


def _is_tests(receiver: Callable[..., Any] | weakref.ref[Any]) -> bool:
    """Is this receiver the tests' own? Receivers Django or a library connect when first imported stay."""
    if isinstance(receiver, weakref.ref):
        receiver = receiver()
    return getattr(receiver, "__module__", "").partition(".")[0] == "tests"
