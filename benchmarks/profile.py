"""Profile one server under one workload with py-spy; print its hottest functions.

    python benchmarks/profile.py --server dualstream --workload fast --seconds 10
    python benchmarks/profile.py --server dualstream --workload idle --streams 10000 --seconds 15

Workloads: ``fast`` (back-to-back streams of small events, as in A), ``burst`` (as in E),
``idle`` (many streams ticking once a second, as in C) and ``first`` (sequential requests for a
one-event stream, as in D). Needs py-spy (``pip install py-spy``) and
permission to ptrace the server (root, or kernel.yama.ptrace_scope = 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import client, run_async, scenarios
from benchmarks.procs import SERVERS, Server, raise_nofile
from benchmarks.run import cores

#: Frames on every stack (the interpreter, click, uvicorn's main and the event loop's runner): not news.
_ROOT_FILES = ("<frozen runpy>", "click/core.py", "uvicorn/main.py", "uvicorn/server.py", "uvicorn/_compat.py",
               "asyncio/runners.py", "uvicorn/__main__.py")  # fmt: skip


def _function(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (file.py)``: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def hot_spots(collapsed: str, top: int) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        frames = [f for f in frames if not f.endswith(tuple(f"({r})" for r in _ROOT_FILES))]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for f in set(frames):
            total[f] += n
    if not samples:
        return "no samples"
    lines = [f"{samples} samples of the busy thread(s)", "", "self %   function (innermost frame)"]
    lines += [f"{n / samples * 100:6.1f}   {f}" for f, n in own.most_common(top)]
    lines += ["", "total %  function (anywhere on the stack)"]
    lines += [f"{n / samples * 100:6.1f}   {f}" for f, n in total.most_common(top)]
    return "\n".join(lines)


async def first_events(server: Server, seconds: float) -> str:
    deadline = time.perf_counter() + seconds
    times = []
    while time.perf_counter() < deadline:
        times.append(await client.time_to_first_event(server.port, server.spec.path("fast", 1), timeout=30))
    return f"{len(times):,} requests, median time to first event {sorted(times)[len(times) // 2] * 1e3:.3f} ms"


async def stream_repeatedly(server: Server, endpoint: str, seconds: float, events: int) -> str:
    deadline = time.perf_counter() + seconds
    total = 0
    while time.perf_counter() < deadline:
        r = await client.read_stream(server.port, server.spec.path(endpoint, events), timeout=120)
        total += r.events
    return f"{total:,} events received"


async def main(args: argparse.Namespace) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(py_spy, os.X_OK):
        sys.exit("py-spy not found: pip install py-spy")
    client_core, server_core = cores()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    raise_nofile()
    spec = next(s for s in SERVERS if s.name == args.server)
    (server,) = await scenarios.start([spec], server_core)
    out = Path(tempfile.mkdtemp(prefix="dualstream-profile-")) / "stacks.txt"
    record = [py_spy, "record", "--pid", str(server.pid), "--format", "raw", "--rate", str(args.rate),
              "--duration", str(int(args.seconds)), "--output", str(out), "--nonblocking"]  # fmt: skip
    spy: subprocess.Popen[bytes] | None = None
    try:
        if args.workload == "idle":  # profile the steady state, not the opening of the streams
            fleet = client.IdleFleet(server.port, spec.path("tick", 3_600))
            try:
                await fleet.open(args.streams, batch=250, timeout=60)
                spy = subprocess.Popen(record, stdout=subprocess.DEVNULL)
                await asyncio.sleep(args.seconds + 1)
                summary = f"{len(fleet.streams)} streams open, {fleet.failed} failed"
            finally:
                await fleet.close()
        else:
            spy = subprocess.Popen(record, stdout=subprocess.DEVNULL)
            await asyncio.sleep(0.5)  # let py-spy attach
            if args.workload == "first":
                summary = await first_events(server, args.seconds - 1)
            else:
                summary = await stream_repeatedly(server, args.workload, args.seconds - 1, args.events)
        spy.wait(60)
    finally:
        if spy is not None and spy.poll() is None:
            spy.kill()
        server.stop()
    print(f"{spec.name}, workload {args.workload}: {summary}; raw stacks in {out}")
    print(hot_spots(out.read_text() if out.exists() else "", args.top))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="dualstream", choices=[s.name for s in SERVERS])
    p.add_argument("--workload", default="fast", choices=["fast", "burst", "idle", "first"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--events", type=int, default=100_000, help="events per stream (fast, burst)")
    p.add_argument("--streams", type=int, default=10_000, help="open streams (idle)")
    p.add_argument("--rate", type=int, default=200, help="samples per second")
    p.add_argument("--top", type=int, default=20)
    run_async(main(p.parse_args()))
