"""Garbage-collector pauses of a server process (SIGUSR1), and what it keeps per event (SIGUSR2).

``BENCH_GC_THRESHOLD=700,10,100`` (``run.py --gc-threshold``) also sets the collector's thresholds,
the same for every server.

Every server imports this module. On SIGUSR1 it writes, to ``gc_stats_path(pid)``, the count and
total pause of the collections of each generation since it started, and the longest pause
since the previous report. The harness
reads it before and after a measurement window (see ``procs.Server.gc_stats``).

A first SIGUSR2 collects and freezes every object; the next one counts, by type, the tracked
objects created since that are still alive, writes them to ``held_objects_path(pid)`` and
unfreezes (``benchmarks/held_objects.py``). With ``BENCH_OWNERS=1`` the server traces allocations
from its start (``tracemalloc``), and the count is by owner and type: the package whose code made
the object (``OWNERS``), and the bytes its allocations hold.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from collections import Counter
from typing import Any

_count = [0, 0, 0]
_seconds = [0.0, 0.0, 0.0]
_longest = [0.0, 0.0, 0.0]
_started: float | None = None


def gc_stats_path(pid: int) -> str:
    return f"/tmp/dualstream-bench-gc-{pid}.json"


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _started
    if phase == "start":
        _started = time.perf_counter()
    elif _started is not None:
        pause, g = time.perf_counter() - _started, info["generation"]
        _count[g] += 1
        _seconds[g] += pause
        _longest[g] = max(_longest[g], pause)


def _write(signum: int, frame: object) -> None:
    path = gc_stats_path(os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump({"count": _count, "seconds": _seconds, "longest": _longest}, f)
    os.replace(path + ".tmp", path)
    _longest[:] = [0.0, 0.0, 0.0]


def held_objects_path(pid: int) -> str:
    return f"/tmp/dualstream-bench-held-{pid}.json"


#: Where an object was made, by the innermost frame of its allocation in one of these; else the event loop's.
OWNERS = {
    "/dualstream/": "dualstream",
    "/django/": "django",
    "/asgiref/": "django",  # Django's sync/async bridge
    "/uvicorn/": "uvicorn",
    "/starlette/": "sse-starlette",
    "/sse_starlette/": "sse-starlette",
    "/anyio/": "sse-starlette",  # its task groups
    "/benchmarks/": "view",  # the benchmark's own view or app
}
_baseline: Any = None  # BENCH_OWNERS: the tracemalloc snapshot taken when the objects were frozen
_LOOP = "loop"  # made by C code the event loop runs (uvloop: transports, protocols' callbacks)


def owner(obj: object) -> str:
    """Which package's code allocated ``obj`` (``BENCH_OWNERS``); only what tracemalloc traced since it started."""
    import tracemalloc

    trace = tracemalloc.get_object_traceback(obj)
    if trace is None:  # Python 3.11 finds no trace for instances of Python classes: their class's module tells
        return _owner_of([tracemalloc.Frame((f"/{type(obj).__module__.replace('.', '/')}/", 0))])
    return _owner_of(trace)


def _owner_of(trace: Any) -> str:
    for frame in reversed(trace):  # innermost first
        for marker, name in OWNERS.items():
            if marker in frame.filename:
                return name
    return _LOOP


def _held_objects(signum: int, frame: object) -> None:
    global _baseline
    gc.collect()
    if not gc.get_freeze_count():
        gc.freeze()  # from here on, gc.get_objects() returns only what is created later
        if os.environ.get("BENCH_OWNERS"):
            import tracemalloc

            _baseline = tracemalloc.take_snapshot()
        return
    held: Counter[str] = Counter()
    if _baseline is not None:
        import tracemalloc

        for obj in gc.get_objects():
            held[f"{owner(obj)} {type(obj).__qualname__}"] += 1
        # Bytes by owner: what traced allocations hold now over the baseline, objects or not (buffers, dict tables).
        for stat in tracemalloc.take_snapshot().compare_to(_baseline, "traceback"):
            held[f"bytes {_owner_of(stat.traceback)}"] += stat.size_diff
        _baseline = None
    else:
        held.update(type(o).__qualname__ for o in gc.get_objects())
    gc.unfreeze()
    path = held_objects_path(os.getpid())
    with open(path + ".tmp", "w") as f:
        json.dump(dict(held), f)
    os.replace(path + ".tmp", path)


def install() -> None:
    if os.environ.get("BENCH_OWNERS"):
        import tracemalloc

        tracemalloc.start(25)
    threshold = os.environ.get("BENCH_GC_THRESHOLD")
    if threshold:
        gc.set_threshold(*(int(part) for part in threshold.split(",")))
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
        signal.signal(signal.SIGUSR1, _write)
        signal.signal(signal.SIGUSR2, _held_objects)


install()
