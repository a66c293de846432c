"""Broadcast on Redis: one publisher, many SSE subscribers spread over two uvicorn workers.

    python benchmarks/broadcast.py                       # 1,000 then 10,000 subscribers
    python benchmarks/broadcast.py --subscribers 1000 --rate 100 --seconds 10

Two ``uvicorn project.asgi:application`` processes (the demo site, ``REDIS_URL`` set, its
``TopicView`` at ``/api/activity/``) hold the subscribers, half each; this process holds the
clients (raw asyncio sockets, uvloop) and, in a thread, the publisher: ``publish()`` at a fixed
rate, each event carrying the time it was published. Each client finds those times in the bytes
it reads. Reports published events/s, the delivered ratio (events received / events published x
subscribers), p50/p99 publish-to-receive latency, Redis connections the workers hold (CLIENT
LIST, less this process's), and RSS growth per subscriber. Redis database 15, its key deleted at
the end; every wait has a timeout; the workers die with this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import run_async
from benchmarks.procs import HOST, ROOT, _child_setup, free_port, raise_nofile

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
TOPIC = "demo-activity"
PATH = "/api/activity/?stream=1"
STAMP = re.compile(rb'"t":(\d+)')


class Worker:
    def __init__(self) -> None:
        self.port = free_port()
        env = dict(
            os.environ, DEBUG="False", SECRET_KEY="benchmark-only", REDIS_URL=REDIS_URL,
            DJANGO_SETTINGS_MODULE="project.settings", PYTHONPATH=str(ROOT),
        )  # fmt: skip
        cmd = [
            sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", HOST, "--port", str(self.port),
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "off", "--no-access-log",
            "--log-level", "warning", "--backlog", "4096",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, start_new_session=True, preexec_fn=lambda: _child_setup(None)
        )

    async def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                _, writer = await asyncio.open_connection(HOST, self.port)
                writer.close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("worker did not start")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(next(line for line in f if line.startswith("VmRSS")).split()[1])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


class Subscriber(asyncio.Protocol):
    """Reads one SSE stream; records the publish-to-receive latency of each stamped event."""

    def __init__(self, last_id: str, latencies: list[int]) -> None:
        self.request = (
            f"GET {PATH} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\nLast-Event-ID: {last_id}\r\n\r\n"
        ).encode()
        self.latencies = latencies
        self.events = 0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        stamps = STAMP.findall(data)  # an event split over two reads is missed: counted at the end instead
        self.events += data.count(b"\ndata:") + data.startswith(b"data:")
        self.latencies.extend(now - int(t) for t in stamps)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True


def redis_clients(client: object) -> int:
    return len(client.client_list())  # type: ignore[attr-defined]


async def run(subscribers: int, rate: float, seconds: float) -> dict[str, float]:
    import django
    import redis
    from django.conf import settings

    if not settings.configured:
        settings.configure(DUALSTREAM={"BROADCAST": {"BACKEND": "redis", "URL": REDIS_URL}})
        django.setup()
    from dualstream.broadcast import publish

    r = redis.Redis.from_url(REDIS_URL)
    r.delete("dualstream:broadcast:" + TOPIC)
    base_clients = redis_clients(r)
    workers = [Worker(), Worker()]
    loop = asyncio.get_running_loop()
    try:
        await asyncio.gather(*(w.wait_ready() for w in workers))
        start_id = await asyncio.to_thread(publish, TOPIC, {"warm": 0})
        rss0 = [w.rss_kib() for w in workers]
        latencies: list[int] = []
        subs: list[Subscriber] = []
        for batch in range(0, subscribers, 500):
            made = await asyncio.gather(
                *(
                    loop.create_connection(lambda: Subscriber(start_id, latencies), HOST, workers[i % 2].port)
                    for i in range(batch, min(subscribers, batch + 500))
                )
            )
            subs += [p for _, p in made]
        # Every subscriber has joined once it has the warm-up event published now (replay covers late joins).
        await asyncio.to_thread(publish, TOPIC, {"warm": 1})
        deadline = time.monotonic() + 120
        while sum(s.events >= 1 for s in subs) < subscribers and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        joined = sum(s.events >= 1 for s in subs)
        rss = [w.rss_kib() for w in workers]
        connections = redis_clients(r) - base_clients
        latencies.clear()
        before = sum(s.events for s in subs)

        published = 0

        def publisher() -> None:
            nonlocal published
            interval, t0 = 1 / rate, time.perf_counter()
            while (elapsed := time.perf_counter() - t0) < seconds:
                publish(TOPIC, {"t": time.perf_counter_ns()})
                published += 1
                pause = published * interval - (time.perf_counter() - t0)
                if pause > 0:
                    time.sleep(pause)
            nonlocal_rate[0] = published / elapsed

        nonlocal_rate = [0.0]
        await asyncio.to_thread(publisher)
        expected = published * subscribers
        deadline = time.monotonic() + 10  # let delivery catch up, then count
        while sum(s.events for s in subs) - before < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        received = sum(s.events for s in subs) - before
        latencies.sort()
        for s in subs:
            s.transport.close()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6 if latencies else float("nan")

        return {
            "subscribers": subscribers,
            "joined": joined,
            "published/s": nonlocal_rate[0],
            "delivered": received / expected if expected else float("nan"),
            "p50 ms": pct(0.50),
            "p99 ms": pct(0.99),
            "redis conns": connections,
            "RSS KiB/sub": sum(b - a for a, b in zip(rss0, rss)) / subscribers,
        }
    finally:
        for w in workers:
            w.stop()
        r.delete("dualstream:broadcast:" + TOPIC)


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    rows = []
    for n, rate in zip(args.subscribers, args.rate):
        row = await run(n, rate, args.seconds)
        rows.append(row)
        print(", ".join(f"{k} {v:,.3f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in row.items()), flush=True)
    print(
        "\n| subscribers | events/s published | delivered | p50 ms | p99 ms | Redis connections | RSS KiB / subscriber |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['subscribers']:,} | {r['published/s']:.1f} | {r['delivered']:.3f} | {r['p50 ms']:.1f} "
            f"| {r['p99 ms']:.1f} | {r['redis conns']:.0f} | {r['RSS KiB/sub']:.1f} |"
        )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=[1_000, 10_000])
    p.add_argument("--rate", type=lambda s: [float(x) for x in s.split(",")], default=[100.0, 10.0],
                   help="events/s published, one per --subscribers entry (default 100,10)")  # fmt: skip
    p.add_argument("--seconds", type=float, default=10.0, help="publishing window per run (default 10)")
    return p.parse_args(argv)


if __name__ == "__main__":
    run_async(main(parse()))
