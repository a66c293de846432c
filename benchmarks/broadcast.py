"""Broadcast on Redis: one publisher, many SSE subscribers spread over two uvicorn workers.

    python benchmarks/broadcast.py                                      # 1,000 at 100/s, 10,000 at 10/s
    python benchmarks/broadcast.py --subscribers 1000,1000 --rate 20,100 --seconds 10
    python benchmarks/broadcast.py --server eventstream                 # django-eventstream, same load

Two uvicorn workers (``broadcast_asgi.py``: the demo site, ``REDIS_URL`` set, its ``TopicView`` at
``/api/activity/``; or django-eventstream's view, ``broadcast_eventstream.py``) hold the
subscribers, half each. This process holds the clients: raw non-blocking sockets on uvloop, read
with ``recvmsg`` for the kernel's receive timestamp (``SO_TIMESTAMPNS``). A third process
publishes (``broadcast_publisher.py``: at a fixed rate, each event carrying the wall-clock time it
was published). Latency is receive timestamp minus publish time, so how late this process gets to
a socket (it shares the cores with the workers) is not counted against the server.

Reports published events/s, the delivered ratio (events received / events published x
subscribers), p50/p99 publish-to-receive latency, Redis connections the workers hold (CLIENT LIST,
less this process's), RSS growth per subscriber, the CPU the workers, the clients and the whole
machine used while publishing (other work on the machine shows in the last), the workers' CPU
per delivered event, and their garbage collections in that window. ``--held`` first counts the
objects one event leaves alive per subscriber (``servers/gcstats.py``); ``--warmup`` first publishes
unmeasured for that long (the first fan-outs after the joins pay for their collections). Redis database 15, its
keys deleted at the end; every wait has a timeout; the workers die with this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import run_async
from benchmarks.procs import CLOCK_TICKS, HOST, ROOT, Server, ServerSpec, raise_nofile

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
TOPIC = "demo-activity"
#: Per server: its settings module, its ASGI application, the stream's path, and its Redis keys to delete.
SERVERS = {
    "dualstream": (
        "project.settings",
        "benchmarks.broadcast_asgi:dualstream_application",
        "/api/activity/?stream=1",
        ["dualstream:broadcast:" + TOPIC],
    ),
    "eventstream": ("benchmarks.broadcast_eventstream", "benchmarks.broadcast_asgi:application", "/events/", []),
}
STAMP = re.compile(rb'"t": ?(\d+)')
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value; the socket module may not name it
_CMSG_SPACE = socket.CMSG_SPACE(16)  # one struct timespec


def receive(sock: socket.socket) -> tuple[bytes, int | None] | None:
    """One read and the kernel's receive time (ns; None if not given); None if nothing was ready, b"" at the end."""
    try:
        data, ancdata, _, _ = sock.recvmsg(262_144, _CMSG_SPACE)
    except BlockingIOError:
        return None
    except OSError:
        return b"", None
    if not ancdata:
        return data, None
    sec, nsec = struct.unpack("qq", ancdata[0][2][:16])
    return data, sec * 1_000_000_000 + nsec


class Subscriber:
    """One SSE stream on a raw socket; records the publish-to-receive latency of each stamped event."""

    def __init__(self, sock: socket.socket, latencies: list[int]) -> None:
        self.sock = sock
        self.latencies = latencies
        self.events = 0
        self.closed = False

    def readable(self) -> None:
        read = receive(self.sock)
        if read is None:
            return
        data, received = read
        if not data:
            self.close()
            return
        self.events += data.count(b"\ndata:") + data.startswith(b"data:")
        stamps = STAMP.findall(data)  # an event split over two reads is missed: counted at the end instead
        if stamps and received is not None:
            self.latencies.extend(received - int(t) for t in stamps)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()


async def connect(port: int, path: str, last_id: str | None, latencies: list[int]) -> Subscriber:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    await loop.sock_connect(sock, (HOST, port))
    resume = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{resume}\r\n"
    await loop.sock_sendall(sock, request.encode())
    sub = Subscriber(sock, latencies)
    loop.add_reader(sock.fileno(), sub.readable)
    return sub


async def run_publisher(server: str, *args: str) -> dict[str, Any]:
    extra = ["--eventstream"] if server == "eventstream" else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.broadcast_publisher", "--topic", TOPIC, *extra, *args,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 600)
    if proc.returncode:
        raise RuntimeError(f"the publisher failed ({proc.returncode})")
    result: dict[str, Any] = json.loads(out)
    return result


def redis_clients(r: Any) -> int:
    """Connections to the benchmark's database (other work on the same Redis uses others)."""
    db = str(r.connection_pool.connection_kwargs.get("db", 0))
    return sum(str(c.get("db")) == db for c in r.client_list())


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _machine_busy() -> float:
    """CPU seconds every process on this machine has used (all but idle and iowait), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / CLOCK_TICKS


async def wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def held_per_event(workers: list[Server], subs: list[Subscriber], server: str) -> float:
    """Tracked objects one event leaves alive in the workers, per subscriber (``servers/gcstats.py``)."""
    for w in workers:
        w.freeze_objects()
    await asyncio.sleep(1.0)  # freezing thousands of streams' objects takes a while
    before = sum(s.events for s in subs)
    await run_publisher(server, "--once", json.dumps({"held": 1}))
    await wait_for(lambda: sum(s.events for s in subs) - before >= len(subs), 30)
    await asyncio.sleep(0.5)  # every stream is back waiting
    held = [await w.held_objects() for w in workers]
    return sum(n for h in held for n in h.values()) / len(subs)


async def run(server: str, subscribers: int, rate: float, seconds: float, held: bool, warmup: float) -> dict[str, Any]:
    import redis

    settings_module, app, path, keys = SERVERS[server]
    os.environ.update(DJANGO_SETTINGS_MODULE=settings_module, REDIS_URL=REDIS_URL, DEBUG="False")
    os.environ.setdefault("SECRET_KEY", "benchmark-only")
    r = redis.Redis.from_url(REDIS_URL)
    if keys:
        r.delete(*keys)
    base_clients = redis_clients(r)
    workers = [Server(ServerSpec(server, app), None) for _ in range(2)]
    try:
        await asyncio.gather(*(w.wait_ready() for w in workers))
        start_id = (await run_publisher(server, "--once", '{"warm": 0}'))["id"] if server == "dualstream" else None
        rss0 = [w.rss_kib() for w in workers]
        latencies: list[int] = []
        subs: list[Subscriber] = []
        for batch in range(0, subscribers, 500):
            subs += await asyncio.gather(
                *(
                    connect(workers[i % 2].port, path, start_id, latencies)
                    for i in range(batch, min(subscribers, batch + 500))
                )
            )
        # Every subscriber has joined once it has the warm-up event published now (replay covers late joins).
        await asyncio.sleep(1.0)
        await run_publisher(server, "--once", '{"warm": 1}')
        await wait_for(lambda: sum(s.events >= 1 for s in subs) == subscribers, 120)
        joined = sum(s.events >= 1 for s in subs)
        rss = [w.rss_kib() for w in workers]
        connections = redis_clients(r) - base_clients
        held_objects = await held_per_event(workers, subs, server) if held else float("nan")
        if warmup > 0:
            # Not measured: the collections the joins' allocations have made due, the first fan-outs.
            before = sum(s.events for s in subs)
            warm = await run_publisher(server, "--rate", str(rate), "--seconds", str(warmup))
            await wait_for(lambda: sum(s.events for s in subs) - before >= warm["published"] * subscribers, 30)
        latencies.clear()
        before = sum(s.events for s in subs)

        gc0 = [await w.gc_stats() for w in workers]
        cpu0, own0, machine0, t0 = [w.cpu_seconds() for w in workers], _own_cpu(), _machine_busy(), time.monotonic()
        result = await run_publisher(server, "--rate", str(rate), "--seconds", str(seconds))
        wall = time.monotonic() - t0
        server_cpu = sum(w.cpu_seconds() - c for w, c in zip(workers, cpu0))
        client_cpu, machine_cpu = _own_cpu() - own0, _machine_busy() - machine0
        gc1 = [await w.gc_stats() for w in workers]
        expected = result["published"] * subscribers
        await wait_for(lambda: sum(s.events for s in subs) - before >= expected, 10)  # let delivery catch up
        received = sum(s.events for s in subs) - before
        latencies.sort()
        for s in subs:
            s.close()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6 if latencies else float("nan")

        def gc_delta(key: str, gen: int) -> float:
            return float(sum(b[key][gen] - a[key][gen] for a, b in zip(gc0, gc1)))

        return {
            "server": server,
            "subscribers": subscribers,
            "joined": joined,
            "published/s": result["rate"],
            "delivered": received / expected if expected else float("nan"),
            "p50 ms": pct(0.50),
            "p99 ms": pct(0.99),
            "max ms": pct(1.0),
            "redis conns": connections,
            "RSS KiB/sub": sum(b - a for a, b in zip(rss0, rss)) / subscribers,
            "server CPU %": 100 * server_cpu / wall,
            "client CPU %": 100 * client_cpu / wall,
            "machine CPU %": 100 * machine_cpu / wall,
            "server us/delivery": 1e6 * server_cpu / received if received else float("nan"),
            "GCs gen 0/1/2": "/".join(str(int(gc_delta("count", g))) for g in range(3)),
            "GC ms": 1000 * sum(gc_delta("seconds", g) for g in range(3)),
            "longest GC ms": 1000 * max(x for b in gc1 for x in b["longest"]),
            "held objects/sub/event": held_objects,
        }
    finally:
        for w in workers:
            w.stop()
        if keys:
            r.delete(*keys)


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    if args.gc_threshold:
        os.environ["BENCH_GC_THRESHOLD"] = args.gc_threshold  # read by servers/gcstats.py in the workers
    rows = []
    for n, rate in zip(args.subscribers, args.rate):
        row = await run(args.server, n, rate, args.seconds, args.held, args.warmup)
        rows.append(row)
        print(", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    print(
        "\n| server | subscribers | events/s | delivered | p50 ms | p99 ms | worker CPU % | µs CPU / delivery "
        "| client CPU % | machine CPU % | Redis conns | RSS KiB / sub |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['server']} | {r['subscribers']:,} | {r['published/s']:.1f} | {r['delivered']:.3f} | {r['p50 ms']:.1f} "
            f"| {r['p99 ms']:.1f} | {r['server CPU %']:.0f} | {r['server us/delivery']:.1f} | {r['client CPU %']:.0f} "
            f"| {r['machine CPU %']:.0f} | {r['redis conns']:.0f} | {r['RSS KiB/sub']:.1f} |"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", choices=sorted(SERVERS), default="dualstream")
    p.add_argument("--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=[1_000, 10_000])
    p.add_argument("--rate", type=lambda s: [float(x) for x in s.split(",")], default=[100.0, 10.0],
                   help="events/s published, one per --subscribers entry (default 100,10)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=10.0, help="publishing window per run (default 10)")
    p.add_argument("--warmup", type=float, default=0.0,
                   help="publish at the rate this many seconds first, unmeasured (default 0)")  # fmt: skip
    p.add_argument("--held", action="store_true", help="first count the objects one event leaves alive")
    p.add_argument("--gc-threshold", help="gc.set_threshold() arguments for the workers, e.g. 700,10,100")
    return p.parse_args(argv)


if __name__ == "__main__":
    run_async(main(parse()))
