"""Broadcast settings: ``DUALSTREAM["BROADCAST"]`` over the defaults below, read on every access (``dualstream.conf``).

DUALSTREAM = {"BROADCAST": {"BACKEND": "redis", "URL": "redis://127.0.0.1:6379/0", "MAXLEN": 10_000}}
"""

from __future__ import annotations

from typing import Any

from ..conf import DUALSTREAM, Rule

DEFAULTS: dict[str, Any] = {
    # "memory" (one process), "redis", or the dotted path of a Backend subclass.
    "BACKEND": "memory",
    # Where the engine is (redis: a redis:// or rediss:// URL).
    "URL": "redis://127.0.0.1:6379/0",
    # Events each topic keeps for replay (Redis trims approximately: XADD MAXLEN ~).
    "MAXLEN": 10_000,
    # Prepended to every topic's key in the engine: one prefix per site (or per test run).
    "PREFIX": "dualstream:broadcast:",
    # Live events that may wait for one slow subscriber; beyond it, its stream ends (without "done")
    # and the client resumes by replay.
    "BUFFER": 1_000,
    # Seconds one engine command (publish, replay, joining a topic) may take before BroadcastUnavailable.
    "TIMEOUT": 5.0,
    # Seconds the engine may stay unreachable while open streams wait for it; then they end with an error event.
    "OUTAGE_TIMEOUT": 30.0,
    # Redis connections each process may open for commands, besides its one reader.
    "MAX_CONNECTIONS": 10,
    # Who may read a topic named by the URL (dualstream.broadcast.urls): the dotted path of a function
    # (request, topic) -> bool, async or sync. None: nobody.
    "AUTHORIZE": None,
}

#: Rules beyond what each default's type implies (dualstream/checks.py also imports the backend).
RULES = {
    "BACKEND": Rule('"memory", "redis" or the dotted path of a Backend subclass', lambda v: isinstance(v, str)),
    "AUTHORIZE": Rule(
        "the dotted path of a function (request, topic) -> bool, or None", lambda v: v is None or isinstance(v, str)
    ),
}

BROADCAST = DUALSTREAM.section("BROADCAST", DEFAULTS, rules=RULES)


def options() -> dict[str, Any]:
    """The effective settings: the project's ``DUALSTREAM["BROADCAST"]`` over ``DEFAULTS``."""
    return BROADCAST.options()
