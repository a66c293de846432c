"""Shared state between the test views (running in the live server's thread) and the tests.

Each test passes a fresh ``probe`` token; the view reports what happened to
its producer through the ``Probe`` registered under that token.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field


@dataclass
class Probe:
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)  # produce()'s finally ran
    produced: int = 0
    produced_at: list[float] = field(default_factory=list)
    exit: str = ""  # how produce() ended: "returned", "cancelled", "closed", or an exception name


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
