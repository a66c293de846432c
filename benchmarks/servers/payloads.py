"""What every server sends, so that the four differ only in how they send it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

DEFAULT_N = 1000
#: The longest stream any endpoint will produce: bounded, so that nothing runs forever.
MAX_N = 1_000_000
TICK_SECONDS = float(os.environ.get("BENCH_TICK_SECONDS", "1.0"))  # benchmarks/servers_idle.py --tick sets it
_PAD = "lorem ipsum dolor sit amet " * 10  # 270 characters


def params(query: str | bytes | Mapping[str, Any]) -> Mapping[str, Any]:
    """A query string (an ASGI scope's bytes, or text) as a mapping; a mapping (Django's ``GET``) as it is."""
    if isinstance(query, bytes):
        query = query.decode("latin-1")
    if isinstance(query, str):
        query = dict(part.partition("=")[::2] for part in query.split("&") if part)
    return query


def count(query: str | bytes | Mapping[str, Any], default: int = DEFAULT_N) -> int:
    """``n`` from a query string or mapping, clamped to ``[0, MAX_N]``."""
    query = params(query)
    try:
        n = int(query.get("n", default))
    except (TypeError, ValueError):
        n = default
    return max(0, min(n, MAX_N))


def small(i: int) -> dict[str, Any]:
    """A small event: about 25 bytes of JSON."""
    return {"i": i, "msg": "hello"}


def burst(i: int) -> dict[str, Any]:
    """A medium event: about 300 bytes of JSON."""
    return {"i": i, "text": _PAD}


def tick(i: int) -> dict[str, Any]:
    return {"i": i, "t": time.time()}
