"""Soak: a thousand clients connect, read and leave at random for a long time; does the server stay healthy?

    .venv/bin/python -m benchmarks.soak [--duration 600] [--clients 1000] [--rows 20000] [--postgres URL]

The server is the demo as ``make run`` serves it (uvicorn, uvloop, httptools, lifespan off) in a
subprocess pinned to one CPU, with two endpoints of ``servers/soak_urls.py`` added: events that carry
their send time, and a report of the loop's asyncio tasks. The database (SQLite by default, kept in the
temporary directory between runs) holds ``--rows`` demo readings.

Each client, over and over: picks an endpoint and a mode (the demo's ticker, feed and readings export,
and the clock), connects, reads for a random time (one visit in ten leaves within 50 ms of its request),
and leaves, half the time with a TCP reset, half with a normal close. Per minute it prints the visits,
the events delivered (items counted in the raw bytes), the errors, the clock events' delivery latency
(p50, p99: send time in the server to arrival here), and the server's RSS, asyncio tasks, threads and
CPU. Beside the clients, a plain request (the report) goes out every second; at the end: totals, that
request's p50 and p99 wait, over the whole soak and after the first period (the first period holds the
clients' arrival: a thousand connections in five seconds), and the task and thread counts once every
client has gone.

Errors: a failed or slow (10 s) connection, a status other than 200, a reset from the server, and a
visit of 5 s or more that received nothing. The server's own log goes to this process's stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import socket
import struct
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import client, run_async
from benchmarks.export_rows import Database, postgres_database, seed
from benchmarks.procs import HOST, Server, ServerSpec, raise_nofile
from benchmarks.run import cores

SETTINGS = "benchmarks.servers.soak_settings"
SPEC = ServerSpec("dualstream-demo", "project.asgi:application")
SENT = re.compile(rb'"sent":\s*([0-9.]+)')
QUICK_LEAVE = 0.1  # the share of visits that leave within 50 ms of their request
SILENT = 5.0  # a visit this long that received nothing is an error


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    marker: bytes  # once per item in the raw bytes, in every mode
    weight: int
    dwell: float  # mean seconds a client stays (exponential, at most 6 times this)


ENDPOINTS = [
    Endpoint("ticker sse", "/api/ticker/?stream=1&from=1000&interval=250", b'"n":', 3, 45),
    Endpoint("ticker ndjson", "/api/ticker/?format=ndjson&from=1000&interval=250", b'"n":', 1, 45),
    Endpoint("ticker json", "/api/ticker/?format=json&from=5&interval=100", b'"n":', 1, 5),
    Endpoint("feed sse", "/api/feed/?stream=1&count=1000&interval=300", b'"n":', 3, 45),
    Endpoint("feed ndjson", "/api/feed/?format=ndjson&count=1000&interval=300", b'"n":', 1, 45),
    Endpoint("clock sse", "/soak/clock/?stream=1", b'"sent":', 4, 45),
    Endpoint("clock ndjson", "/soak/clock/?format=ndjson", b'"sent":', 2, 45),
    # Exports run as fast as the client reads: short visits, or they would take the server's whole CPU.
    Endpoint("readings sse", "/api/readings/?format=sse", b'"id":', 1, 2),
    Endpoint("readings ndjson", "/api/readings/?format=ndjson", b'"id":', 1, 2),
    Endpoint("readings json", "/api/readings/?format=json", b'"id":', 1, 2),
]


class Latencies:
    """A histogram of latencies in bins 2% wide: percentiles within 2%, in constant memory."""

    STEP = math.log(1.02)
    FLOOR = 1e-5  # seconds: anything faster counts as this

    def __init__(self) -> None:
        self.bins: Counter[int] = Counter()

    def add(self, seconds: float) -> None:
        self.bins[int(math.log(max(seconds, self.FLOOR) / self.FLOOR) / self.STEP)] += 1

    def update(self, other: Latencies) -> None:
        self.bins.update(other.bins)

    def percentile(self, q: float) -> float | None:
        total = sum(self.bins.values())
        if not total:
            return None
        seen = 0
        for b in sorted(self.bins):
            seen += self.bins[b]
            if seen >= q * total:
                return self.FLOOR * math.exp((b + 1) * self.STEP)  # the bin's upper edge
        raise AssertionError("unreachable")


@dataclass
class Period:
    """What the clients saw during one period (a minute by default)."""

    visits: int = 0
    events: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: Latencies = field(default_factory=Latencies)


class Reader(asyncio.Protocol):
    """One visit's connection: sends the request, counts the endpoint's items, times the clock's events."""

    def __init__(self, soak: Soak, endpoint: Endpoint) -> None:
        self.soak = soak
        self.endpoint = endpoint
        self.request = client.request(endpoint.path)
        self.clock = endpoint.marker == b'"sent":'
        self.status: int | None = None
        self.received = 0
        self.tail = b""  # what follows the last newline (clock) or the marker's length - 1 last bytes
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        arrived = time.monotonic()
        if self.status is None:
            self.status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1
        self.received += len(data)
        period = self.soak.period
        data = self.tail + data
        if self.clock:
            complete, _, self.tail = data.rpartition(b"\n")
            for sent in SENT.findall(complete):
                period.latencies.add(arrived - float(sent))
                period.events += 1
        else:
            period.events += data.count(self.endpoint.marker)
            self.tail = data[1 - len(self.endpoint.marker) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def leave(self, reset: bool) -> None:
        assert self.transport is not None
        if reset:
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        else:
            self.transport.close()


class Soak:
    def __init__(self, server: Server, clients: int, seed: int) -> None:
        self.server = server
        self.clients = clients
        self.seed = seed
        self.period = Period()

    async def visit(self, endpoint: Endpoint, dwell: float, reset: bool) -> None:
        loop = asyncio.get_running_loop()
        self.period.visits += 1
        try:
            _, reader = await asyncio.wait_for(
                loop.create_connection(lambda: Reader(self, endpoint), HOST, self.server.port), 10
            )
        except (OSError, TimeoutError) as exc:
            self.period.errors[f"connect: {type(exc).__name__}"] += 1
            return
        try:
            lost = await asyncio.wait_for(asyncio.shield(reader.closed), dwell)  # the server ended the answer
        except TimeoutError:
            lost = None
            reader.leave(reset)
            await asyncio.wait([reader.closed], timeout=5)
        except asyncio.CancelledError:  # the soak is over
            reader.leave(reset=True)
            raise
        errors = self.period.errors
        if lost is not None:
            errors[f"server: {type(lost).__name__}"] += 1
        if reader.status not in (None, 200):
            errors[f"HTTP {reader.status}"] += 1
        elif reader.status is None and dwell >= SILENT:
            errors[f"nothing in {SILENT:g}+ s"] += 1

    async def client(self, index: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1_000_003 + index)
        weights = [e.weight for e in ENDPOINTS]
        loop = asyncio.get_running_loop()
        await asyncio.sleep(rng.uniform(0, 5))  # arrivals spread over the first seconds, not one burst
        while loop.time() < deadline:
            endpoint = rng.choices(ENDPOINTS, weights)[0]
            if rng.random() < QUICK_LEAVE:
                dwell = rng.uniform(0, 0.05)
            else:
                dwell = min(rng.expovariate(1 / endpoint.dwell), 6 * endpoint.dwell)
            await self.visit(endpoint, dwell, reset=rng.random() < 0.5)
            await asyncio.sleep(rng.uniform(0, 2))  # a client's pause between two visits


async def plain_requests(
    server: Server, deadline: float, answered: Latencies, steady: Latencies, ramp_end: float, every: float = 1.0
) -> None:
    """A plain request (``/soak/report/``) every ``every`` seconds until ``deadline``: how long each waits.

    Each wait goes into ``answered``, and those of requests sent from ``ramp_end`` on into ``steady`` too.
    One that gets no answer within 30 s counts as 30 s.
    """
    loop = asyncio.get_running_loop()
    while loop.time() < deadline:
        started = loop.time()
        report = await server_report(server)
        seconds = report["seconds"] if report else 30.0
        answered.add(seconds)
        if started >= ramp_end:
            steady.add(seconds)
        await asyncio.sleep(max(0.0, started + every - loop.time()))


async def server_report(server: Server, timeout: float = 30.0) -> dict[str, Any] | None:
    """``/soak/report/`` (tasks, threads) and ``seconds``, the time it took: how long a new request waits.

    None if the server does not answer within ``timeout``.
    """
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, server.port), timeout)
        writer.write(f"GET /soak/report/ HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        answer = await asyncio.wait_for(reader.read(-1), timeout)
        writer.close()
        result: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    except (OSError, TimeoutError, ValueError):
        return None
    result["seconds"] = time.perf_counter() - started
    return result


def describe(report: dict[str, Any] | None) -> str:
    return f"{report['tasks']} tasks, {report['threads']} threads" if report else "no answer"


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.1f}"


@dataclass
class Row:
    minute: float
    period: Period
    rss_mb: float
    report: dict[str, Any] | None
    threads: int
    cpu: float  # share of one core over the period

    def line(self) -> str:
        p, r = self.period, self.report
        tasks, answered = (str(r["tasks"]), f"{r['seconds']:.2f}") if r else ("-", "no answer")
        return (
            f"| {self.minute:g} | {p.visits:,} | {p.events:,} | {sum(p.errors.values()):,} "
            f"| {ms(p.latencies.percentile(0.5))} | {ms(p.latencies.percentile(0.99))} "
            f"| {self.rss_mb:.0f} | {tasks} | {self.threads} | {self.cpu:.0%} | {answered} |"
        )


HEADER = (
    "| at (min) | visits | events | errors | p50 latency (ms) | p99 latency (ms) | server RSS (MB) | asyncio tasks "
    "| threads | server CPU | a new request answered in (s) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


async def soak(args: argparse.Namespace, server_core: int | None) -> int:
    server = Server(SPEC, server_core)
    try:
        await server.wait_ready()
        before = await server_report(server)
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + args.duration
        s = Soak(server, args.clients, args.seed)
        clients = [asyncio.create_task(s.client(i, deadline)) for i in range(args.clients)]
        answered, steady = Latencies(), Latencies()
        prober = asyncio.create_task(plain_requests(server, deadline, answered, steady, start + args.period))
        rows: list[Row] = []
        cpu, cpu_at = server.cpu_seconds(), loop.time()
        print(HEADER, flush=True)
        for k in range(1, math.ceil(args.duration / args.period) + 1):
            # Periods end on fixed boundaries, however long the previous report took to come.
            boundary = min(start + k * args.period, deadline)
            await asyncio.sleep(max(0.0, boundary - loop.time()))
            period, s.period = s.period, Period()
            cpu_now, now = server.cpu_seconds(), loop.time()
            share = (cpu_now - cpu) / (now - cpu_at)
            cpu, cpu_at = cpu_now, now
            row = Row(round((boundary - start) / 60, 1), period, server.rss_kib() / 1024, None, server.threads(), share)
            row.report = await server_report(server)
            rows.append(row)
            print(row.line(), flush=True)
        for task in [*clients, prober]:
            task.cancel()
        await asyncio.gather(*clients, prober, return_exceptions=True)
        after = await settled(server, before)
    finally:
        server.stop()

    total = Period()
    for row in rows:
        total.visits += row.period.visits
        total.events += row.period.events
        total.errors.update(row.period.errors)
        total.latencies.update(row.period.latencies)
    print(f"\n{args.clients:,} clients for {args.duration:g} s: {total.visits:,} visits, {total.events:,} events")
    print(
        f"clock delivery latency: p50 {ms(total.latencies.percentile(0.5))} ms, p99 {ms(total.latencies.percentile(0.99))} ms"
    )
    print(
        f"a plain request, one a second ({sum(answered.bins.values()):,}), answered in: "
        f"p50 {ms(answered.percentile(0.5))} ms, p99 {ms(answered.percentile(0.99))} ms; "
        f"after the first period (the clients' arrival) ({sum(steady.bins.values()):,}): "
        f"p50 {ms(steady.percentile(0.5))} ms, p99 {ms(steady.percentile(0.99))} ms"
    )
    print(f"errors: {sum(total.errors.values()):,}" + "".join(f"\n  {k}: {v:,}" for k, v in total.errors.most_common()))
    if rows:
        print(f"server RSS: {rows[0].rss_mb:.0f} MB after the first period, {rows[-1].rss_mb:.0f} MB after the last")
    print(f"before the clients: {describe(before)}; after they all left: {describe(after)}")
    return 0 if after and before and after["tasks"] <= before["tasks"] + 3 else 1


async def settled(server: Server, before: dict[str, Any] | None, within: float = 10.0) -> dict[str, Any] | None:
    """The report once the tasks are back near their count before the soak (or at the deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        report = await server_report(server)
        if report is None or before is None or report["tasks"] <= before["tasks"] + 3 or loop.time() > deadline:
            return report
        await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="Seconds of soak (default 600).")
    parser.add_argument("--clients", type=int, default=1000, help="Concurrent clients (default 1,000).")
    parser.add_argument("--period", type=float, default=60, help="Seconds per table row (default 60).")
    parser.add_argument("--rows", type=int, default=20_000, help="Demo readings in the database (default 20,000).")
    parser.add_argument("--postgres", default="", help="A PostgreSQL server URL; default: a SQLite file.")
    parser.add_argument("--seed", type=int, default=12, help="Seeds every client's choices.")
    args = parser.parse_args(argv)

    if args.postgres:
        database = Database("postgres", postgres_database(args.postgres, args.rows))
    else:
        sqlite_file = Path(tempfile.gettempdir()) / f"dualstream-soak-{args.rows}.sqlite3"
        database = Database("sqlite", f"sqlite:///{sqlite_file}")
    seed(database, args.rows)
    # The server inherits these (procs.Server): the demo's app on the soak's settings and database.
    os.environ.update(DJANGO_SETTINGS_MODULE=SETTINGS, DATABASE_URL=database.url)
    client_core, server_core = cores()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    raise_nofile()
    print(
        f"soak: {args.clients:,} clients, {args.duration:g} s, {database.label} with {args.rows:,} readings, seed {args.seed}"
    )
    return run_async(soak(args, server_core))


if __name__ == "__main__":
    sys.exit(main())
