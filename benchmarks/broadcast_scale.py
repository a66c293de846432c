"""Broadcast on Redis at scale, before and after a change, side by side: mass reconnects and many topics.

    python benchmarks/broadcast_scale.py                                  # 5,000 reconnects, 10,000 topics
    python benchmarks/broadcast_scale.py --reconnect 500 --topics 1000    # a quick look
    git worktree add ../dualstream-b7221ac b7221ac                        # the backend before the rewrite
    python benchmarks/broadcast_scale.py --trees before=../dualstream-b7221ac,after=. --only B

Each tree (a checkout of this project) is served in its own fresh uvicorn process per scenario (one
worker, or ``--workers N`` forked processes sharing the listening socket as gunicorn's do; uvloop,
httptools, ``--lifespan off``), with ``cwd`` = the tree, so the tree's own ``dualstream`` answers:
the test suite's broadcast settings (the Redis backend: ``tests.support.broadcast_settings``, or
``tests.broadcast_settings`` in a tree from before the suite had tests/support) with the
``TopicFeed`` of their URLconf at ``/topic/<name>/``. It is mounted with the settings' heartbeat set
to ``--heartbeat`` (15 s, the library's default): the test URLconf's 0.2 s would make 10,000 idle
streams write 50,000 heartbeats a second, and the run would measure heartbeats rather than
broadcast. Events are published by a small process per tree and scenario that runs *that tree's*
``RedisBackend.publish_sync`` (the two trees write different entries), each event carrying its
wall-clock publish time.

Redis is a private ``redis-server`` started for the run (no persistence), so ``INFO commandstats``
and ``INFO cpu`` count this benchmark's traffic only; ``--redis-url`` uses an existing server
instead (then other work on it shows in those figures). ``--redis-delay-ms D`` puts a proxy that
delays every chunk by D ms each way between Redis and the servers and publishers: a local Redis
answers faster than any networked one, so commands rarely pile up. Every run uses its own key
prefix, deleted at the end. The clients live in this process: raw non-blocking sockets on uvloop, read with
``recvmsg`` for the kernel's receive timestamp, so latency is not charged with how late this
process (which shares the 2 cores with the server and Redis) gets to a socket.

A. **Mass reconnect**: 100 events on one topic; ``--reconnect`` SSE connections opened at once with
   ``Last-Event-ID`` = event 50's id. HTTP statuses, how many replayed exactly events 51-100 in order,
   the time until every stream had event 100, then one more event and the time until every stream had
   it; Redis commands in the scenario; error lines in the server's stderr.
B. **Many topics**: ``--topics`` subscribers, one per topic ``user-<i>``, opened all at once (500 TCP
   connects in flight at a time) or ``--pace`` a second. Each topic first gets one seed event, and
   each subscriber resumes from it (``Last-Event-ID``), so nothing published after the seed can be
   lost whatever state its join is in. As soon as every connection is opened, one probe event goes
   to every topic; a subscriber is *live* when its probe has arrived (replayed or live: either proves
   the join is done). Time until every stream still open is live (bounded by ``--max-wait``; how many
   were live then), Redis commands and Redis CPU from the
   first connect until then, the probes' own publishing subtracted (measured per publish while seeding,
   when no subscriber exists); the server's OS threads (``/proc/<pid>/status``, sampled every 50 ms),
   their maximum over the joins and their number once all were live. Then ``--rate`` events/s to
   random topics for ``--seconds``: p50/p99 publish-to-receive latency and the delivered ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

import redis

from benchmarks import run_async
from benchmarks.broadcast import _SO_TIMESTAMPNS, receive
from benchmarks.procs import HOST, _child_setup, free_port, raise_nofile

BATCH = 500  # TCP connects in flight at once
COMMANDS = ("xrange", "xread", "evalsha", "xrevrange", "subscribe", "xadd", "publish", "client|unblock")

# The server: the tree's TopicFeed, the settings' heartbeat replaced (see the module's docstring).
SERVER = r"""
import os, socket, sys, types
import django
from django.conf import settings

django.setup()
from django.urls import path
from dualstream.asgi import get_asgi_application
from importlib import import_module
import uvicorn

TopicFeed = import_module(settings.ROOT_URLCONF).TopicFeed  # the tree's own topic URLs, wherever its suite has them

port, heartbeat, lean, workers, backlog = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "lean", *map(int, sys.argv[4:6])
if lean:  # what a per-user topic needs, and no more: each of Django's MiddlewareMixin hops to a thread
    settings.MIDDLEWARE = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
urls = types.ModuleType("broadcast_scale_urls")
urls.urlpatterns = [path("topic/<str:name>/", TopicFeed.as_view())]
sys.modules[urls.__name__] = urls
settings.ROOT_URLCONF = urls.__name__
settings.DUALSTREAM = {**settings.DUALSTREAM, "HEARTBEAT": heartbeat}
config = uvicorn.Config(
    get_asgi_application(), loop="uvloop", http="httptools", lifespan="off", access_log=False, log_level="warning",
    backlog=backlog,  # uvicorn listens on the socket again, with its own
)
# Workers share one listening socket, as uvicorn --workers and gunicorn's do; forked before any loop exists.
sock = socket.create_server(("127.0.0.1", port), backlog=backlog)
for _ in range(workers - 1):
    if os.fork() == 0:
        break
uvicorn.Server(config).run(sockets=[sock])
"""

# The publisher: the tree's own RedisBackend.publish_sync; one JSON command a line on stdin, one answer on stdout.
PUBLISHER = r"""
import json, os, random, sys, time
import django

django.setup()
from dualstream.broadcast.backends.redis import RedisBackend
from dualstream.broadcast.conf import DEFAULTS

backend = RedisBackend({**DEFAULTS, "URL": os.environ["TEST_REDIS_URL"], "PREFIX": os.environ["BROADCAST_TEST_PREFIX"]})


def publish(topic, data):
    return backend.publish_sync(topic, json.dumps(data, separators=(",", ":")), None)


for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "seq":  # events {"i": 1..count} on one topic
        out = [publish(cmd["topic"], {"i": i}) for i in range(1, cmd["count"] + 1)]
    elif cmd["op"] == "each":  # one event per topic
        out = [publish(t, {cmd["mark"]: 1, "t": time.time_ns()}) for t in cmd["topics"]]
    elif cmd["op"] == "one":
        out = publish(cmd["topic"], {**cmd["data"], "t": time.time_ns()})
    else:  # "rate": random topics at a fixed rate
        pick, topics = random.Random(cmd["seed"]).choice, cmd["topics"]
        n, interval, t0 = 0, 1 / cmd["rate"], time.perf_counter()
        while time.perf_counter() - t0 < cmd["seconds"]:
            publish(pick(topics), {"n": n, "t": time.time_ns()})
            n += 1
            pause = n * interval - (time.perf_counter() - t0)
            if pause > 0:
                time.sleep(pause)
        out = {"published": n, "rate": n / (time.perf_counter() - t0)}
    print(json.dumps(out), flush=True)
"""


# A TCP proxy that delays every chunk by argv[3] ms each way: Redis as far as a network away.
PROXY = r"""
import asyncio, sys

listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    try:
        while data := await reader.read(65536):
            loop.call_at(loop.time() + delay, writer.write, data)
    except OSError:
        pass
    loop.call_at(loop.time() + delay, writer.close)


async def handle(reader, writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen, backlog=4096)
    async with server:
        await server.serve_forever()


asyncio.run(main())
"""

# Clients ---------------------------------------------------------------------------------------


@dataclass
class SSEEvent:
    name: str | None
    id: str | None
    data: bytes
    received_ns: int  # the kernel's receive timestamp of the read that completed it


class Conn:
    """One SSE stream on a raw socket: HTTP status, de-chunked body, parsed events with receive timestamps."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.status: int | None = None
        self.events: list[SSEEvent] = []
        self.closed = False
        self.failed = False  # closed before any answer
        self.unconnected = False  # the TCP connect (or sending the request) failed or took over 30 s
        self._head = b""
        self._chunked = False
        self._raw = b""
        self._left = 0
        self._body = b""

    def readable(self) -> None:
        read = receive(self.sock)
        if read is None:
            return
        data, received = read
        if not data:
            self.close()
            return
        self._feed(data, received if received is not None else time.time_ns())

    def _feed(self, data: bytes, ts: int) -> None:
        if self.status is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self._head[:end], self._head[end + 4 :]
            try:
                self.status = int(head.split(b" ", 2)[1])
            except (IndexError, ValueError):
                self.status = -1
            self._chunked = b"transfer-encoding: chunked" in head.lower()
            if self.status != 200:
                return
        if self._chunked:
            data = self._dechunk(data)
        self._body += data
        *blocks, self._body = self._body.split(b"\n\n")
        for block in blocks:
            name = id_ = None
            lines = []
            for line in block.split(b"\n"):
                field_, _, value = line.partition(b":")
                value = value[1:] if value.startswith(b" ") else value
                if field_ == b"data":
                    lines.append(value)
                elif field_ == b"event":
                    name = value.decode()
                elif field_ == b"id":
                    id_ = value.decode()
            if lines or name:
                self.events.append(SSEEvent(name, id_, b"\n".join(lines), ts))

    def _dechunk(self, data: bytes) -> bytes:
        raw, out = self._raw + data, []
        while raw:
            if self._left:
                take = raw[: self._left]
                out.append(take)
                raw, self._left = raw[len(take) :], self._left - len(take)
                continue
            end = raw.find(b"\r\n")
            if end < 0:
                break
            line, raw = raw[:end], raw[end + 2 :]
            if line:  # empty: the CRLF after a chunk's data
                self._left = int(line.split(b";")[0], 16) or -1  # 0: the last chunk
                if self._left < 0:
                    self._left, raw = 0, b""
        self._raw = raw
        return b"".join(out)

    def has(self, mark: bytes) -> bool:
        return any(mark in e.data for e in self.events)

    def first(self, mark: bytes) -> SSEEvent | None:
        return next((e for e in self.events if mark in e.data), None)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.status is None:
                self.failed = True
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()


async def open_conn(port: int, path: str, last_id: str | None) -> Conn:
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    conn = Conn(sock)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (HOST, port)), 30)
        resume = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
        request = f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        await asyncio.wait_for(loop.sock_sendall(sock, request.encode()), 30)
    except (TimeoutError, OSError):
        conn.failed = conn.closed = conn.unconnected = True
        sock.close()
        return conn
    loop.add_reader(sock.fileno(), conn.readable)
    return conn


async def open_all(port: int, requests: list[tuple[str, str | None]], pace: float = 0) -> list[Conn]:
    """Every connection at ``pace`` a second, or as fast as this process can (``BATCH`` TCP connects in flight)."""
    if pace:
        loop = asyncio.get_running_loop()
        t0, tasks = loop.time(), []
        for i, (p, last_id) in enumerate(requests):
            if (delay := t0 + i / pace - loop.time()) > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(open_conn(port, p, last_id)))
        return list(await asyncio.gather(*tasks))
    conns: list[Conn] = []
    for start in range(0, len(requests), BATCH):
        conns += await asyncio.gather(*(open_conn(port, p, i) for p, i in requests[start : start + BATCH]))
    return conns


def answers(conns: list[Conn]) -> dict[str, int]:
    """How the connections were answered."""
    statuses = [c.status for c in conns]
    return {
        "200": statuses.count(200),
        "503": statuses.count(503),
        "other status": sum(s not in (None, 200, 503) for s in statuses),
        "connect failed": sum(c.unconnected for c in conns),
        "closed unanswered": sum(c.failed and not c.unconnected for c in conns),
        "no answer yet": sum(not c.closed and c.status is None for c in conns),
    }


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (machine-wide)."""
    with open("/proc/net/netstat") as f:
        rows = [line.split() for line in f if line.startswith("TcpExt:")]
    return int(dict(zip(rows[0], rows[1]))["ListenOverflows"])


def threads_of(pid: int) -> int:
    """The OS threads of process ``pid`` now (``/proc/<pid>/status``); 0 once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    except (OSError, StopIteration):
        return 0


async def sample_threads(pid: int, samples: list[int], step: float = 0.05) -> None:
    """Append ``pid``'s thread count to ``samples`` every ``step`` seconds until cancelled."""
    while True:
        samples.append(threads_of(pid))
        await asyncio.sleep(step)


def describe(path: str) -> str:
    """The tree's commit, and whether its dualstream/ differs from it."""
    head = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", path, "status", "--porcelain", "--", "dualstream"], capture_output=True, text=True
    )
    return head.stdout.strip() + (" with uncommitted changes in dualstream/" if dirty.stdout.strip() else "")


async def wait_until(condition: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(step)
    return True


# Processes -------------------------------------------------------------------------------------


class Redis:
    """A private redis-server for the run (or an existing one), and its counters."""

    def __init__(self, url: str | None, delay_ms: float) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.proxy: subprocess.Popen[bytes] | None = None
        if url is None:
            port = free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no",
                 "--maxclients", "20000", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, start_new_session=True, preexec_fn=lambda: _child_setup(None),
            )  # fmt: skip
            url = f"redis://{HOST}:{port}/0"
        self.url = url
        self.client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.app_url = url  # what the servers and publishers use
        if delay_ms:
            port, target = free_port(), self.client.connection_pool.connection_kwargs["port"]
            self.proxy = subprocess.Popen(
                [sys.executable, "-c", PROXY, str(port), str(target), str(delay_ms)],
                start_new_session=True, preexec_fn=lambda: _child_setup(None),
            )  # fmt: skip
            self.app_url = f"redis://{HOST}:{port}/{self.client.connection_pool.connection_kwargs.get('db', 0)}"
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection((HOST, port), 1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def counters(self) -> tuple[dict[str, int], float]:
        """(calls by command, Redis CPU seconds so far)."""
        stats = self.client.info("commandstats")
        cpu = self.client.info("cpu")
        calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def delete_prefix(self, prefix: str) -> None:
        keys = list(self.client.scan_iter(match=prefix + "*", count=1000))
        for start in range(0, len(keys), 1000):
            self.client.delete(*keys[start : start + 1000])

    def stop(self) -> None:
        self.client.close()
        if self.proxy is not None:
            self.proxy.kill()
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def diff(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {k: v - a.get(k, 0) for k, v in b.items() if v - a.get(k, 0)}


class Tree:
    """One tree's server and publisher for one scenario, on its own key prefix."""

    def __init__(
        self,
        name: str,
        path: str,
        redis_: Redis,
        heartbeat: float,
        logs: Path,
        scenario: str,
        lean: bool = False,
        workers: int = 1,
        backlog: int = 4096,
    ) -> None:
        self.name = name
        self.prefix = f"bench-scale-{uuid.uuid4().hex[:8]}:"
        self.redis = redis_
        self.port = free_port()
        suite = "tests.support" if (Path(path) / "tests" / "support").is_dir() else "tests"  # older trees: flat tests/
        self.env = dict(
            os.environ, DJANGO_SETTINGS_MODULE=f"{suite}.broadcast_settings", BROADCAST_TEST_PREFIX=self.prefix,
            TEST_REDIS_URL=redis_.app_url,
        )  # fmt: skip
        self.env.pop("PYTHONPATH", None)
        self.log = logs / f"{scenario}-{name}.stderr"
        self.path = path
        with open(self.log, "wb") as log:
            self.server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(self.port), str(heartbeat), "lean" if lean else "full", str(workers), str(backlog)],
                cwd=path, env=self.env,
                stdout=log, stderr=log, start_new_session=True, preexec_fn=lambda: _child_setup(None),
            )  # fmt: skip
        self.publisher: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.publisher = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PUBLISHER, cwd=self.path, env=self.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 24, preexec_fn=lambda: _child_setup(None),
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            if self.server.poll() is not None:
                raise RuntimeError(f"{self.name}: the server exited with {self.server.returncode}; see {self.log}")
            try:
                _, writer = await asyncio.open_connection(HOST, self.port)
                writer.close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: the server did not listen within 30 s") from None
                await asyncio.sleep(0.05)

    async def publish(self, timeout: float = 120, **command: Any) -> Any:
        assert self.publisher is not None and self.publisher.stdin and self.publisher.stdout
        self.publisher.stdin.write(json.dumps(command).encode() + b"\n")
        line = await asyncio.wait_for(self.publisher.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"{self.name}: the publisher died")
        return json.loads(line)

    def stderr_counts(self) -> tuple[int, int, int]:
        """(lines, lines containing "Traceback", lines containing "ERROR" or "Error") in the server's stderr."""
        text = self.log.read_text(errors="replace").splitlines()
        return len(text), sum("Traceback" in x for x in text), sum("ERROR" in x or "Error" in x for x in text)

    def stderr_summary(self, top: int = 6) -> list[tuple[str, int]]:
        """The server's most frequent unindented stderr lines, numbers replaced by N."""
        lines = self.log.read_text(errors="replace").splitlines()
        counts = Counter(re.sub(r"\d+", "N", x)[:160] for x in lines if x.strip() and not x[0].isspace())
        return counts.most_common(top)

    def stop(self) -> None:
        if self.publisher is not None and self.publisher.returncode is None:
            self.publisher.kill()
        if self.server.poll() is None:
            os.killpg(self.server.pid, signal.SIGTERM)  # the session: every worker
            try:
                self.server.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.server.pid, signal.SIGKILL)
                self.server.wait(5)
        self.redis.delete_prefix(self.prefix)


def close_all(conns: list[Conn]) -> None:
    for c in conns:
        c.close()


# Scenarios -------------------------------------------------------------------------------------


@dataclass
class Row:
    tree: str
    figures: dict[str, Any] = field(default_factory=dict)


async def mass_reconnect(tree: Tree, n: int, timeout: float) -> dict[str, Any]:
    topic = "mass"
    ids = await tree.publish(op="seq", topic=topic, count=100)
    path = f"/topic/{topic}/?stream=1"
    calls0, cpu0 = tree.redis.counters()
    overflows = listen_overflows()
    t0 = time.monotonic()
    conns = await open_all(tree.port, [(path, ids[49])] * n)
    t_opened = time.monotonic() - t0
    last = b'"i":100'
    everyone = await wait_until(lambda: all(c.closed or c.has(last) for c in conns), timeout)
    t_replayed = time.monotonic() - t0
    waiting = [c for c in conns if not c.closed and c.has(last)]
    sent_ns = time.time_ns()
    await tree.publish(op="one", topic=topic, data={"i": 101})
    live = b'"i":101'
    await wait_until(lambda: all(c.closed or c.has(live) for c in waiting), 60)
    arrivals = [e.received_ns for c in waiting if (e := c.first(live))]
    calls1, cpu1 = tree.redis.counters()
    await asyncio.sleep(0.2)  # the last lines of the server's log

    expected = [f'{{"i":{i}}}'.encode() for i in range(51, 101)]

    def exact(c: Conn) -> bool:
        data = [e.data for e in c.events if e.name is None]
        return c.status == 200 and data[:50] == expected and len(data) == 51 and live in data[50]

    exactly = sum(exact(c) for c in conns)
    calls = diff(calls0, calls1)
    lines, tracebacks, errors = tree.stderr_counts()
    close_all(conns)
    return {
        "N": n,
        **answers(conns),
        "exact 51-100 + live": exactly,
        "resets": sum(any(e.name == "reset" for e in c.events) for c in conns),
        "opened s": t_opened,
        "all replayed s": t_replayed if everyone else float("nan"),
        "replayed at end": sum(c.has(last) for c in conns),
        "live event to all ms": (max(arrivals) - sent_ns) / 1e6 if arrivals else float("nan"),
        "live received": len(arrivals),
        "live expected": len(waiting),
        "redis calls": sum(calls.values()),
        **{cmd: calls.get(cmd, 0) for cmd in COMMANDS},
        "redis CPU s": cpu1 - cpu0,
        "listen queue overflows": listen_overflows() - overflows,
        "stderr lines": lines,
        "tracebacks": tracebacks,
        "error lines": errors,
    }


async def many_topics(tree: Tree, n: int, max_wait: float, rate: float, seconds: float, pace: float) -> dict[str, Any]:
    topics = [f"user-{i}" for i in range(n)]
    await tree.publish(op="each", topics=["warm-up"], mark="seed")  # the publisher's one-off commands
    calls0, cpu0 = tree.redis.counters()
    seeds = await tree.publish(op="each", topics=topics, mark="seed")
    calls1, cpu1 = tree.redis.counters()
    per_publish = {k: v / n for k, v in diff(calls0, calls1).items()}  # no subscriber yet: the publisher's cost
    cpu_per_publish = (cpu1 - cpu0) / n

    overflows = listen_overflows()
    threads: list[int] = []
    sampler = asyncio.ensure_future(sample_threads(tree.server.pid, threads))
    t0 = time.monotonic()
    conns = await open_all(tree.port, [(f"/topic/{t}/?stream=1", s) for t, s in zip(topics, seeds)], pace)
    t_opened = time.monotonic() - t0
    await tree.publish(op="each", topics=topics, mark="probe")
    t_probed = time.monotonic() - t0
    probe = b'"probe":1'
    all_live = await wait_until(lambda: all(c.closed or c.has(probe) for c in conns), max_wait - t_probed, 0.1)
    t_live = time.monotonic() - t0
    sampler.cancel()
    threads_live = threads_of(tree.server.pid)
    calls2, cpu2 = tree.redis.counters()
    overflows = listen_overflows() - overflows
    live = sum(c.has(probe) for c in conns)
    joins = {k: round(v - per_publish.get(k, 0) * n) for k, v in diff(calls1, calls2).items()}
    status = answers(conns)

    mark = b'"n":'
    published = await tree.publish(timeout=seconds + 60, op="rate", topics=topics, rate=rate, seconds=seconds, seed=1)
    await wait_until(
        lambda: sum(sum(mark in e.data for e in c.events) for c in conns) >= published["published"], 10, 0.2
    )
    latencies = sorted(e.received_ns - json.loads(e.data)["t"] for c in conns for e in c.events if mark in e.data)
    # The publisher's picks again (same seed): how many events went to a topic whose subscriber was live.
    pick = random.Random(1).choice
    live_topics = {t for t, c in zip(topics, conns) if c.has(probe)}
    to_live = sum(pick(topics) in live_topics for _ in range(published["published"]))
    received_live = sum(sum(mark in e.data for e in c.events) for c in conns if c.has(probe))
    await asyncio.sleep(0.2)
    lines, tracebacks, errors = tree.stderr_counts()
    close_all(conns)

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] / 1e6 if latencies else float("nan")

    return {
        "N": n,
        **status,
        "opened s": t_opened,
        "probes published s": t_probed,
        "live (probe received)": live,
        "every open stream live after s": t_live if all_live else float("nan"),
        "... after the last connect s": t_live - t_opened if all_live else float("nan"),
        "waited s": t_live,
        "listen queue overflows": overflows,
        "server threads, max during the joins": max(threads, default=0),
        "server threads once all were live": threads_live,
        "redis calls": sum(joins.values()),
        **{cmd: joins.get(cmd, 0) for cmd in COMMANDS},
        "redis CPU s": max(0.0, (cpu2 - cpu1) - cpu_per_publish * n),
        "published/s": published["rate"],
        "published": published["published"],
        "delivered": len(latencies) / published["published"] if published["published"] else float("nan"),
        "delivered to live streams": received_live / to_live if to_live else float("nan"),
        "p50 ms": pct(0.5),
        "p99 ms": pct(0.99),
        "max ms": pct(1.0),
        "stderr lines": lines,
        "tracebacks": tracebacks,
        "error lines": errors,
    }


# Report ----------------------------------------------------------------------------------------


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(title: str, rows: list[Row]) -> None:
    keys = list(rows[0].figures)
    print(f"\n### {title}\n")
    print("| | " + " | ".join(r.tree for r in rows) + (" | last / first |" if len(rows) == 2 else " |"))
    print("| --- |" + " ---: |" * (len(rows) + (len(rows) == 2)))
    for k in keys:
        values = [r.figures[k] for r in rows]
        ratio = ""
        if len(rows) == 2:
            a, b = values
            ok = isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == a and b == b and a
            ratio = f" {b / a:.3g} |" if ok else " |"
        print(f"| {k} | " + " | ".join(fmt(v) for v in values) + " |" + ratio)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> None:
    raise_nofile()
    trees = [(name, str(Path(path).resolve())) for name, path in (t.split("=", 1) for t in args.trees.split(","))]
    logs = Path(tempfile.mkdtemp(prefix="broadcast_scale-"))
    print(f"{' '.join(sys.argv)}\n{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"{load()}; server logs in {logs}", flush=True)  # fmt: skip
    if args.redis_url is None and shutil.which("redis-server") is None:
        sys.exit("redis-server not found: pass --redis-url")
    redis_ = Redis(args.redis_url, args.redis_delay_ms)
    print(
        f"Redis: {redis_.url} ({'private' if redis_.proc else 'shared: other traffic counts too'})"
        + (f", reached through a proxy that delays each way by {args.redis_delay_ms:g} ms" if redis_.proxy else ""),
        flush=True,
    )
    try:
        for scenario in args.only:
            rows = []
            for name, path in trees:
                if scenario == args.only[0]:
                    print(f"{name} = {path} at {describe(path)}", flush=True)
                tree = Tree(
                    name,
                    path,
                    redis_,
                    args.heartbeat,
                    logs,
                    scenario,
                    lean=args.lean_middleware,
                    workers=args.workers,
                    backlog=args.backlog,
                )
                try:
                    await tree.start()
                    if scenario == "A":
                        figures = await mass_reconnect(tree, args.reconnect, args.max_wait)
                    else:
                        figures = await many_topics(
                            tree, args.topics, args.max_wait, args.rate, args.seconds, args.pace
                        )
                finally:
                    tree.stop()
                figures["load after"] = load().split()[2]
                rows.append(Row(name, figures))
                print(f"{scenario} {name}: " + ", ".join(f"{k} {fmt(v)}" for k, v in figures.items()), flush=True)
                for line, count in tree.stderr_summary():
                    print(f"    server stderr, {count:,} x: {line}")
            title = {
                "A": f"A. Mass reconnect: {args.reconnect:,} streams at once, Last-Event-ID = event 50 of 100",
                "B": f"B. Many topics: {args.topics:,} subscribers on as many topics, "
                + (f"{args.pace:g} connections/s" if args.pace else "all at once")
                + "; then "
                f"{args.rate:g} events/s to random topics for {args.seconds:g} s",
            }[scenario]
            table(title, rows)
    finally:
        redis_.stop()
    print(f"\n{load()}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reconnect", type=int, default=5_000, help="streams reconnecting at once in A (default 5,000)")
    p.add_argument("--topics", type=int, default=10_000, help="subscribers and topics in B (default 10,000)")
    p.add_argument("--trees", default="after=.",
                   help="name=path,... of the checkouts to compare, side by side (default: this one, after=.)")  # fmt: skip
    p.add_argument("--only", type=lambda s: s.upper().split(","), default=["A", "B"], help="scenarios (default A,B)")
    p.add_argument("--max-wait", type=float, default=120.0,
                   help="seconds to wait for every stream to be replayed (A) or live (B) (default 120)")  # fmt: skip
    p.add_argument("--pace", type=float, default=0, help="B's connections per second (default 0: all at once)")
    p.add_argument("--rate", type=float, default=50.0, help="events/s in B's delivery window (default 50)")
    p.add_argument("--seconds", type=float, default=20.0, help="B's delivery window (default 20)")
    p.add_argument("--heartbeat", type=float, default=15.0, help="the servers' HEARTBEAT (default 15)")
    p.add_argument("--workers", type=int, default=1,
                   help="server processes sharing the listening socket, as gunicorn -w N (default 1)")  # fmt: skip
    p.add_argument("--backlog", type=int, default=4096,
                   help="the listening socket's backlog; the kernel caps it at net.core.somaxconn (default 4096)")  # fmt: skip
    p.add_argument("--lean-middleware", action="store_true",
                   help="sessions and auth only, instead of the test settings' nine middleware")  # fmt: skip
    p.add_argument("--redis-delay-ms", type=float, default=0,
                   help="servers and publishers reach Redis through a proxy that delays each way by this much")  # fmt: skip
    p.add_argument("--redis-url", help="an existing Redis to use instead of a private redis-server")
    return p.parse_args(argv)


if __name__ == "__main__":
    run_async(main(parse()))
