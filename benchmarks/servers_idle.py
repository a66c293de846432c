"""Idle streams per ASGI server: the same dualstream view under uvicorn, hypercorn, granian and daphne.

    python -m benchmarks.servers_idle                       # 2,000 streams per server
    python -m benchmarks.servers_idle --streams 2000,10000 --window 20
    python -m benchmarks.servers_idle --streams 10000 --tick 10     # an event every 10 s per stream

Each server runs fresh, pinned to one core (the client, raw asyncio sockets on uvloop, gets the
other), serving scenario C's view (``/ds/tick``: one event a second per stream, 15 s heartbeat)
over HTTP/1.1 with each server's ordinary fast settings. Once every stream has had its first event
and the opening burst has settled: RSS growth per stream, OS threads, then over the window the
share of the nominal event rate delivered and server CPU per delivered event. Memory and CPU are
the whole process tree's (granian serves from a worker process).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import client
from benchmarks.procs import CLOCK_TICKS, DUALSTREAM_APP, HOST, ROOT, Server, ServerSpec, _child_setup, free_port

SPEC = ServerSpec("dualstream", DUALSTREAM_APP, prefix="/ds", query={"stream": "1"}, django=True)
COMMANDS = {
    "uvicorn": (
        "uvicorn", DUALSTREAM_APP, "--host", HOST, "--port", "{port}", "--loop", "uvloop", "--http", "httptools",
        "--lifespan", "off", "--no-access-log", "--log-level", "warning", "--backlog", "4096",
    ),
    "hypercorn -w 0": (
        "hypercorn", DUALSTREAM_APP, "-w", "0", "-k", "uvloop", "-b", f"{HOST}:{{port}}", "--backlog", "4096",
    ),
    "granian": (
        "granian", "--interface", "asginl", "--host", HOST, "--port", "{port}", "--workers", "1",
        "--loop", "uvloop", "--http", "1", "--no-log", "--backlog", "4096",
        "--backpressure", "20000", DUALSTREAM_APP,  # default: backlog / workers requests at once, 4,096
    ),
    "daphne": ("daphne", "-e", f"tcp:{{port}}:interface={HOST}:backlog=4096", "-v", "0", DUALSTREAM_APP),
}  # fmt: skip


class ServerUnderTest(Server):
    """``procs.Server``'s readings, for any server's command line, over its whole process tree."""

    def __init__(self, name: str, command: tuple[str, ...], core: int | None) -> None:
        self.spec = SPEC
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        env["DJANGO_SETTINGS_MODULE"] = "benchmarks.servers.django_settings"
        cmd = [sys.executable, "-m", *(part.format(port=self.port) for part in command)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: _child_setup(core),
            stdout=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid

    def tree(self) -> list[int]:
        pids, i = [self.pid], 0
        while i < len(pids):
            for task in os.listdir(f"/proc/{pids[i]}/task"):
                with open(f"/proc/{pids[i]}/task/{task}/children") as f:
                    pids += [int(child) for child in f.read().split()]
            i += 1
        return pids

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.tree():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / CLOCK_TICKS

    def _status_sum(self, key: str) -> int:
        total = 0
        for pid in self.tree():
            with open(f"/proc/{pid}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith(f"{key}:"))
        return total

    def rss_kib(self) -> int:
        return self._status_sum("VmRSS")

    def threads(self) -> int:
        return self._status_sum("Threads")


async def idle(name: str, k: int, window: float, tick: float, core: int | None) -> str:
    server = ServerUnderTest(name, COMMANDS[name], core)
    fleet = client.IdleFleet(server.port, SPEC.path("tick", 3_600))
    try:
        await server.wait_ready()
        await client.read_stream(server.port, SPEC.path("fast", 10), timeout=30)  # lazy imports loaded
        rss0 = server.rss_kib()
        t0 = time.perf_counter()
        await fleet.open(k, batch=250, timeout=60)
        open_seconds = time.perf_counter() - t0
        await asyncio.sleep(2.0)  # let the opening burst settle
        opened, rss, threads = len(fleet.streams), server.rss_kib(), server.threads()
        gc.collect()
        gc.freeze()
        gc.disable()  # the client's 10,000 protocol objects: no pause of its own in the window
        cpu0, before, w0 = server.cpu_seconds(), fleet.snapshot(), time.perf_counter()
        await asyncio.sleep(window)
        received, expected = fleet.delivery(before, tick)
        seconds = time.perf_counter() - w0
        cpu = server.cpu_seconds() - cpu0
        gc.enable()
        gc.unfreeze()
        return (
            f"| {name} | {opened:,}/{k:,} ({fleet.failed} failed) | {opened / open_seconds:,.0f}/s "
            f"| {(rss - rss0) / max(opened, 1):.1f} | {rss / 1024:.0f} | {threads} "
            f"| {received / expected if expected else 0:.3f} | {cpu / max(received, 1) * 1e6:.0f} "
            f"| {cpu / seconds * 100:.0f}% |"
        )
    finally:
        await fleet.close()
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", default="2000", help="comma-separated stream counts")
    parser.add_argument("--window", type=float, default=10.0, help="seconds of measurement")
    parser.add_argument("--servers", default=",".join(COMMANDS))
    parser.add_argument("--core", type=int, default=1, help="the server's CPU core; the client takes the others")
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between two events of a stream")
    args = parser.parse_args()
    os.environ["BENCH_TICK_SECONDS"] = str(args.tick)  # the servers' view reads it
    client_setup = set(range(os.cpu_count() or 1)) - {args.core}
    if client_setup:
        os.sched_setaffinity(0, client_setup)
    from benchmarks.procs import raise_nofile

    raise_nofile()
    for k in (int(n) for n in args.streams.split(",")):
        print(f"\n{k:,} streams, an event every {args.tick:g} s each, {args.window:.0f} s window")
        print("| server | opened | open rate | RSS KiB/stream | RSS MiB | threads | delivered | CPU µs/event | CPU |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in args.servers.split(","):
            if importlib.util.find_spec(COMMANDS[name][0]) is None:
                print(f"| {name} | not installed |")
                continue
            print(await idle(name, k, args.window, args.tick, args.core), flush=True)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
