"""What each server keeps alive per idle stream and event: the objects behind (C)'s GC pauses.

    python benchmarks/held_objects.py [--streams 2000] [--servers dualstream,django-naive] [--open] [--owners]

Each server opens ``--streams`` streams that get one event a second, as in scenario C. The
server then freezes every object it has (``gc.freeze()``, on a first SIGUSR2), and 1.5 s later,
when every stream has had one more event, counts by type the tracked objects created since and
still alive (a second SIGUSR2; ``servers/gcstats.py``). Divided by the streams, that is what one
event leaves alive across a stream's wait: on a busy process all of it reaches the collector's
oldest generation, and the more of it there is per second, the sooner a full collection comes.

``--open`` freezes before the streams open instead: what one open stream holds, which every full
collection walks. ``--owners`` (slower: the server traces its allocations) splits the count by the
package whose code made each object, and adds the bytes each package's allocations hold.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import client, run_async, scenarios
from benchmarks.procs import SERVERS, Server, raise_nofile
from benchmarks.run import available, cores


async def held_per_stream(server: Server, streams: int, per_open_stream: bool) -> dict[str, float]:
    fleet = client.IdleFleet(server.port, server.spec.path("tick", 3_600))
    try:
        if per_open_stream:
            server.freeze_objects()
            await asyncio.sleep(1.0)
        await fleet.open(streams, batch=250, timeout=60)
        await asyncio.sleep(3.0)  # past the opening burst: every stream is waiting between events
        if not per_open_stream:
            server.freeze_objects()
            await asyncio.sleep(1.5)  # one more event on every stream
        held = await server.held_objects(timeout=600)
        opened = len(fleet.streams)
    finally:
        await fleet.close()
    return {name: n / opened for name, n in held.items()}


async def main(args: argparse.Namespace) -> None:
    client_core, server_core = cores()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    raise_nofile()
    if args.owners:
        os.environ["BENCH_OWNERS"] = "1"  # read by servers/gcstats.py
    wanted = set(args.servers.split(",")) if args.servers else None
    for spec in SERVERS:
        if wanted is not None and spec.name not in wanted:
            continue
        reason = available(spec)
        if reason:
            print(f"{spec.name}: skipped, {reason}")
            continue
        (server,) = await scenarios.start([spec], server_core)
        try:
            held = await held_per_stream(server, args.streams, args.open)
        finally:
            server.stop()
        what = "open stream" if args.open else "stream and event"
        if not args.owners:
            shown = sorted(((n, name) for name, n in held.items() if n >= 0.5), reverse=True)
            print(f"{spec.name}: {sum(held.values()):.1f} objects per {what}")
            print("    " + ", ".join(f"{name} {n:.1f}" for n, name in shown), flush=True)
            continue
        objects = {name: n for name, n in held.items() if not name.startswith("bytes ")}
        print(f"{spec.name}: {sum(objects.values()):.1f} objects per {what}, by owner (bytes its allocations hold):")
        for who in sorted({name.split(" ", 1)[0] for name in objects}, key=lambda w: w != "dualstream"):
            mine = {name.split(" ", 1)[1]: n for name, n in objects.items() if name.split(" ", 1)[0] == who}
            shown = sorted(((n, name) for name, n in mine.items() if n >= 0.5), reverse=True)
            print(f"  {who}: {sum(mine.values()):.1f} ({held.get(f'bytes {who}', 0.0):,.0f} B)")
            print("    " + ", ".join(f"{name} {n:.1f}" for n, name in shown), flush=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--streams", type=int, default=2_000, help="idle streams per server (default 2,000)")
    p.add_argument("--open", action="store_true", help="count what an open stream holds, not what an event leaves")
    p.add_argument("--owners", action="store_true", help="split the count by the package that made each object")
    p.add_argument("--servers", help="comma-separated subset of: " + ", ".join(s.name for s in SERVERS))
    return p.parse_args(argv)


if __name__ == "__main__":
    run_async(main(parse()))
