"""Scenarios A-F. Each runs every server ``runs`` times (interleaved) and returns a printed table."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from . import client
from .procs import BASELINE, Server, ServerSpec
from .report import Column, Metrics, fmt2, fmt3, fmt_int, summarize, table
from .servers import payloads


@dataclass(frozen=True)
class Config:
    """Sizes of every scenario: ``full()`` as specified, ``quick()`` for a check in a minute."""

    runs: int
    a_events: int
    b_streams: int
    b_events: int
    c_sizes: tuple[int, ...]
    c_runs: int
    c_window: float
    d_requests: int
    e_events: int
    f_subscribers: int
    f_rate: float
    f_window: float
    server_core: int | None

    @classmethod
    def full(cls, runs: int, c_runs: int, core: int | None) -> Config:
        return cls(runs, 100_000, 50, 2_000, (2_000, 10_000), c_runs, 20.0, 200, 200_000, 1_000, 20.0, 10.0, core)

    @classmethod
    def quick(cls, runs: int, c_runs: int, core: int | None) -> Config:
        return cls(runs, 20_000, 50, 400, (1_000,), c_runs, 5.0, 50, 50_000, 200, 20.0, 3.0, core)


Measure = Callable[[Server], Awaitable[Metrics]]


async def start(specs: Sequence[ServerSpec], core: int | None) -> list[Server]:
    """Start the servers, wait until they answer, and warm each with one short stream."""
    servers: list[Server] = []
    try:
        for spec in specs:
            servers.append(Server(spec, core))
        for s in servers:
            await s.wait_ready()
            await client.read_stream(s.port, s.spec.path("fast", 10), timeout=30)  # load lazy imports
    except BaseException:
        for s in servers:
            s.stop()
        raise
    return servers


async def interleaved(
    servers: Sequence[Server], runs: int, measure: Measure, warmup: Measure | None = None
) -> dict[str, tuple[Metrics, Metrics]]:
    """Warm each server up, then measure run 1 of every server, run 2 of every server, ..."""
    for s in servers:
        await (warmup or measure)(s)
    results: dict[str, list[Metrics]] = {s.spec.name: [] for s in servers}
    for _ in range(runs):
        for s in servers:
            results[s.spec.name].append(await measure(s))
            await asyncio.sleep(0.2)
    return {name: summarize(r) for name, r in results.items()}


def _check(result: client.StreamResult, expected: int, what: str) -> None:
    if result.status != 200 or result.events < expected:
        raise RuntimeError(f"{what}: HTTP {result.status}, {result.events} events of {expected}")


# (A) one stream, many small events: server CPU per event ---------------------------------


async def scenario_a(servers: Sequence[Server], cfg: Config) -> str:
    n = cfg.a_events

    async def measure(s: Server) -> Metrics:
        cpu0 = s.cpu_seconds()
        r = await client.read_stream(s.port, s.spec.path("fast", n), timeout=300)
        cpu = s.cpu_seconds() - cpu0
        _check(r, n, s.spec.name)
        return {"cpu_us": cpu / n * 1e6, "eps": n / r.seconds, "cpu_share": cpu / r.seconds * 100}

    async def warmup(s: Server) -> Metrics:
        await client.read_stream(s.port, s.spec.path("fast", min(n, 10_000)), timeout=300)
        return {}

    rows = await interleaved(servers, cfg.runs, measure, warmup)
    return table(
        f"(A) one stream of {n:,} small JSON events: server CPU per event (lower is better)",
        [
            Column("cpu_us", "CPU µs/event", fmt2, ratio=True, spread=True),
            Column("eps", "events/s", fmt_int),
            Column("cpu_share", "server CPU %", fmt_int),
        ],
        rows,
        BASELINE,
    )


# (B) 50 concurrent streams ----------------------------------------------------------------


async def scenario_b(servers: Sequence[Server], cfg: Config) -> str:
    k, n = cfg.b_streams, cfg.b_events

    async def measure(s: Server) -> Metrics:
        cpu0 = s.cpu_seconds()
        wall, results = await client.read_streams(s.port, s.spec.path("fast", n), k, timeout=300)
        cpu = s.cpu_seconds() - cpu0
        for r in results:
            _check(r, n, s.spec.name)
        total = k * n
        return {"eps": total / wall, "cpu_us": cpu / total * 1e6}

    rows = await interleaved(servers, cfg.runs, measure)
    return table(
        f"(B) {k} concurrent streams × {n:,} small events: total throughput (higher is better)",
        [
            Column("eps", "events/s", fmt_int, ratio=True, spread=True),
            Column("cpu_us", "CPU µs/event", fmt2, ratio=True),
        ],
        rows,
        BASELINE,
    )


# (C) many idle streams, one event a second --------------------------------------------------


async def idle_once(spec: ServerSpec, cfg: Config, k: int) -> Metrics:
    """A fresh server; open ``k`` ticking streams; measure memory, threads and delivery over a window."""
    (server,) = await start([spec], cfg.server_core)
    fleet = client.IdleFleet(server.port, spec.path("tick", 3_600))
    try:
        await asyncio.sleep(0.5)
        rss0, threads0 = server.rss_kib(), server.threads()
        t0 = time.perf_counter()
        await fleet.open(k, batch=250, timeout=60)
        open_seconds = time.perf_counter() - t0
        await asyncio.sleep(2.0)  # let the opening burst settle
        opened = len(fleet.streams)
        rss, threads = server.rss_kib(), server.threads()
        # Keep the client light and steady: its 10,000 protocol objects are not rescanned, and it has no GC pause.
        gc.collect()
        gc.freeze()
        gc.disable()
        gc0 = await server.gc_stats()
        cpu0, before, w0 = server.cpu_seconds(), fleet.snapshot(), time.perf_counter()
        await asyncio.sleep(cfg.c_window)
        received, expected = fleet.delivery(before, payloads.TICK_SECONDS)
        window = time.perf_counter() - w0
        cpu = server.cpu_seconds() - cpu0
        gc1 = await server.gc_stats()
        gc.enable()
        gc.unfreeze()
        return {
            "opened": opened,
            "failed": fleet.failed,
            "alive": fleet.alive,
            "open_rate": opened / open_seconds,
            "rss_kib": (rss - rss0) / max(opened, 1),
            "rss_mib": rss / 1024,
            "threads": threads,
            "threads0": threads0,
            "delivered": received / expected if expected else 0.0,
            "cpu_pct": cpu / window * 100,
            "gc_pct": (sum(gc1["seconds"]) - sum(gc0["seconds"])) / window * 100,
            "gc_full": gc1["count"][2] - gc0["count"][2],
            "gc_young": gc1["count"][0] - gc0["count"][0],
            "gc_middle": gc1["count"][1] - gc0["count"][1],
            "gc_longest": max(gc1["longest"]),
        }
    finally:
        await fleet.close()
        server.stop()


async def scenario_c(specs: Sequence[ServerSpec], cfg: Config) -> str:
    out = []
    for k in cfg.c_sizes:
        results: dict[str, list[Metrics]] = {s.name: [] for s in specs}
        for _ in range(cfg.c_runs):
            for spec in specs:
                results[spec.name].append(await idle_once(spec, cfg, k))
        rows = {name: summarize(r) for name, r in results.items()}
        out.append(
            table(
                f"(C) {k:,} idle streams, one event a second each ({cfg.c_window:.0f} s window, {cfg.c_runs} run(s))",
                [
                    Column("rss_kib", "RSS KiB/stream", fmt_int, ratio=True, spread=True),
                    Column("rss_mib", "RSS MiB", fmt_int),
                    Column("threads", "threads", fmt_int),
                    Column("delivered", "delivered", fmt3),
                    Column("cpu_pct", "CPU %", fmt_int),
                    Column("gc_pct", "in GC %", fmt_int),
                    Column("gc_young", "young GCs", fmt_int),
                    Column("gc_middle", "middle GCs", fmt_int),
                    Column("gc_full", "full GCs", fmt_int),
                    Column("gc_longest", "max GC pause s", fmt2),
                    Column("open_rate", "opened/s", fmt_int),
                    Column("opened", "open", fmt_int),
                    Column("failed", "failed", fmt_int),
                ],
                rows,
                BASELINE,
                notes=[
                    "RSS KiB/stream = (RSS with streams open - RSS before) / streams; threads = OS threads of the server;",
                    "delivered = event rate received in the window / the nominal one a second (per stream, from its last",
                    "event before the window to its last in it); opened/s = streams opened per second (each waits for its",
                    "first event, 250 in flight). CPU %, in GC % (of wall time), collections of each generation (young: 0,",
                    "middle: 1, full: 2) and max GC pause: server, in the window.",
                ],
            )
        )
    return "\n\n".join(out)


# (D) time to first event ----------------------------------------------------------------------


async def scenario_d(servers: Sequence[Server], cfg: Config) -> str:
    count = cfg.d_requests

    async def measure(s: Server) -> Metrics:
        path = s.spec.path("fast", 1)
        times = [await client.time_to_first_event(s.port, path, timeout=30) for _ in range(count)]
        times.sort()
        return {"median_ms": statistics.median(times) * 1e3, "p90_ms": times[int(0.9 * (len(times) - 1))] * 1e3}

    async def warmup(s: Server) -> Metrics:
        for _ in range(20):
            await client.time_to_first_event(s.port, s.spec.path("fast", 1), timeout=30)
        return {}

    rows = await interleaved(servers, cfg.runs, measure, warmup)
    return table(
        f"(D) time to first event, {count} sequential requests per run (lower is better)",
        [
            Column("median_ms", "median ms", fmt3, ratio=True, spread=True),
            Column("p90_ms", "p90 ms", fmt3),
        ],
        rows,
        BASELINE,
        notes=["From writing the request on an open connection to receiving the first event's bytes."],
    )


# (E) burst: items ready faster than the socket takes them ------------------------------------


async def scenario_e(servers: Sequence[Server], cfg: Config) -> str:
    n = cfg.e_events

    async def measure(s: Server) -> Metrics:
        cpu0 = s.cpu_seconds()
        r = await client.read_stream(s.port, s.spec.path("burst", n), timeout=300)
        cpu = s.cpu_seconds() - cpu0
        _check(r, n, s.spec.name)
        return {"eps": n / r.seconds, "mbps": r.nbytes / r.seconds / 1e6, "cpu_us": cpu / n * 1e6}

    async def warmup(s: Server) -> Metrics:
        await client.read_stream(s.port, s.spec.path("burst", min(n, 10_000)), timeout=300)
        return {}

    rows = await interleaved(servers, cfg.runs, measure, warmup)
    return table(
        f"(E) burst: {n:,} events of ~300 bytes, all ready at once; rate at the client (higher is better)",
        [
            Column("eps", "events/s", fmt_int, ratio=True, spread=True),
            Column("mbps", "MB/s", fmt_int),
            Column("cpu_us", "CPU µs/event", fmt2, ratio=True),
        ],
        rows,
        BASELINE,
    )


# (F) broadcast fan-out: server CPU per delivery ------------------------------------------------


async def scenario_f(servers: Sequence[Server], cfg: Config) -> str:
    k, rate, window = cfg.f_subscribers, cfg.f_rate, cfg.f_window
    n = max(1, round(rate * window))
    fleets: dict[str, client.IdleFleet] = {}

    async def deliver(s: Server, fleet: client.IdleFleet, count: int) -> tuple[int, float, float, dict[str, Any]]:
        """Publish ``count`` events in the server at ``rate``, and wait until every stream has them (or 1 s without one).

        Returns the deliveries, the seconds and the server's CPU seconds from the first publish to the last
        delivery seen (polled every 0.1 s), and the publisher's answer.
        """
        before = last = fleet.events
        target = before + count * len(fleet.streams)
        cpu0, t0 = s.cpu_seconds(), time.perf_counter()
        path = f"{s.spec.prefix}/publish?{urlencode({'rate': rate, 'n': count})}"
        answer: dict[str, Any] = await client.get_json(s.port, path, timeout=count / rate + 30)
        t_last, cpu_last = time.perf_counter(), s.cpu_seconds()
        deadline = t_last + 60
        while last < target and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
            if (now := fleet.events) > last:
                last, t_last, cpu_last = now, time.perf_counter(), s.cpu_seconds()
            elif time.perf_counter() - t_last > 1.0:
                break
        return last - before, t_last - t0, cpu_last - cpu0, answer

    async def warmup(s: Server) -> Metrics:
        # The streams open once per server (subscribed before their headers), then serve every run.
        fleet = fleets[s.spec.name] = client.IdleFleet(s.port, s.spec.path("topic", 0))
        await fleet.open(k, batch=250, timeout=60, first_event=False)
        await deliver(s, fleet, max(1, round(rate)))  # a second's worth: every code path warm
        return {}

    async def measure(s: Server) -> Metrics:
        fleet = fleets[s.spec.name]
        # As in C: the client's thousands of protocol objects are not rescanned, and it has no GC pause.
        gc.collect()
        gc.freeze()
        gc.disable()
        try:
            delivered, seconds, cpu, answer = await deliver(s, fleet, n)
        finally:
            gc.enable()
            gc.unfreeze()
        expected = answer["published"] * len(fleet.streams)
        return {
            "dps": delivered / seconds,
            "delivered": delivered / expected if expected else 0.0,
            "cpu_us": cpu / delivered * 1e6 if delivered else float("nan"),
            "cpu_pct": cpu / seconds * 100,
            "open": fleet.alive,
            "failed": fleet.failed,
        }

    try:
        rows = await interleaved(servers, cfg.runs, measure, warmup)
    finally:
        for fleet in fleets.values():
            await fleet.close()
    bare = rows.get("bare-asgi", ({}, {}))[0].get("cpu_us")
    for medians, _ in rows.values():
        if bare:
            medians["cpu_bare"] = medians["cpu_us"] / bare
    return table(
        f"(F) broadcast: {k:,} subscribers of one topic, {rate:g} events/s for {window:g} s: "
        "server CPU per delivery (lower is better)",
        [
            Column("cpu_us", "CPU µs/delivery", fmt2, ratio=True, spread=True),
            Column("cpu_bare", "× bare", fmt2),
            Column("dps", "deliveries/s", fmt_int),
            Column("delivered", "delivered", fmt3),
            Column("cpu_pct", "server CPU %", fmt_int),
            Column("open", "open", fmt_int),
            Column("failed", "failed", fmt_int),
        ],
        rows,
        BASELINE,
        notes=[
            "A ticker in the server process publishes tick(i) to its one topic; CPU µs/delivery = the server's CPU from",
            "the first publish to the last event received / events received (the publishing included); × bare = the same",
            "÷ bare-asgi's; delivered = events received / (published × streams). bare-asgi, sse-starlette and django-naive",
            "give each subscriber a bounded asyncio.Queue (servers/topic.py); dualstream is TopicView (?stream=1) on the",
            "memory backend, fed by apublish(). Streams open once per server (open = still open at the end), every run reuses them.",
        ],
    )
