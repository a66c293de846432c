"""Clients that leave: storms of thousands, and one fault test per way of leaving. No producer may be orphaned.

The server is a real uvicorn with ``make run``'s defaults (uvloop, httptools, lifespan off), in a subprocess
on ``tests.support.storm_settings``: a server that freezes cannot freeze pytest, and it is killed at the end. It
accepts on a socket bound here, so the first request simply waits for it to start. Clients are raw asyncio
sockets that leave with a TCP reset (SO_LINGER 0, then close): right after sending the request, 0-50 ms
later, after the first bytes, or after reading a whole answer. The producers (tests/support/storm_views.py) count
their starts and ``finally`` blocks, which ``/storm/report/`` returns with the server loop's task count.

After each storm: the server answers within 1 s, every ``produce()`` ``finally`` ran, the loop's tasks
are back to their baseline, on PostgreSQL no session is left in ``FETCH`` or in a transaction, and the
server's log holds none of the messages an orphaned producer leaves. A storm is seeded:
``STORM_SEED=<n>`` replays one (failure messages name the seed).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from tests.support.broadcast import RUN_PREFIX
from tests.support.paths import ROOT

HOST = "127.0.0.1"
ROWS = 3000  # demo readings in each storm database: a buffered export of them takes some 50 ms
SEED = int(os.environ.get("STORM_SEED", "12"))
VISITS, CONCURRENCY = 2000, 200
# PostgreSQL sessions are limited (max_connections, shared with the rest of the suite), and each export
# holds one for its life: at most this many exports in flight. SQLite takes the whole storm.
POSTGRES_EXPORTS = 30
STORM_LIMIT = 40.0  # seconds: longer means the server stopped answering; the checks after it say how
# The storm overloads the server (as it is meant to): a request may wait seconds before it is read. A client
# that means to cut after the first bytes waits for them up to a patience drawn up to this (then it cuts: on a
# slow first item, often while the server waits for it); one that reads the whole answer, 4 times this.
FIRST_BYTES = 5.0
# A request's tasks (uvicorn's cycle, Django's request and disconnect listener) end a moment after its
# client saw the answer end: the previous poll's may still be there. An orphan per cut would be hundreds.
TASK_TOLERANCE = 3
LOG_ALARMS = (
    "Traceback",
    "Task was destroyed",
    "already running",
    "ignored GeneratorExit",
    "Exception in ASGI application",
    "Exception ignored",  # an exception in a finalizer: something was left to the garbage collector
)
# uvicorn as `make run` starts it, accepting on the listening socket whose descriptor is argv[1].
SERVE = (
    "import socket, sys, uvicorn; "
    "config = uvicorn.Config('project.asgi:application', lifespan='off', log_level='warning', access_log=False); "
    "uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(sys.argv[1]))])"
)


# The server and its databases ---------------------------------------------------------------------


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.support.storm_settings",
        "STORM_DATABASE_URL": database_url,
        "BROADCAST_TEST_PREFIX": RUN_PREFIX + "storm:",  # deleted with the run's other broadcast keys
        "PYTHONPATH": str(ROOT),
    }


def prepare(database_url: str) -> None:
    """Migrate the database and seed ``ROWS`` demo readings into it."""
    for command in (["migrate", "--noinput"], ["seed_demo", "--rows", str(ROWS)]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT, env=server_env(database_url), check=True, capture_output=True, timeout=120,
        )  # fmt: skip


class Server:
    """uvicorn serving the test project in a subprocess, its output in ``log``."""

    def __init__(self, database_url: str, log: Path) -> None:
        self._sock = socket.create_server((HOST, 0), backlog=4096)
        self.port: int = self._sock.getsockname()[1]
        self.log = log
        fd = self._sock.fileno()
        with log.open("wb") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", SERVE, str(fd)],
                cwd=ROOT, env=server_env(database_url), stdout=out, stderr=subprocess.STDOUT,
                pass_fds=[fd], start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL: a frozen server ignores SIGTERM."""
        self._proc.kill()
        self._proc.wait(10)
        self._sock.close()

    def alarms(self) -> tuple[int, str]:
        """How many of the log's lines an orphaned producer or a failing request leaves; the log from the first."""
        lines = self.log.read_text(errors="replace").splitlines()
        found = [i for i, line in enumerate(lines) if any(a in line for a in LOG_ALARMS)]
        return len(found), "\n".join(lines[found[0] : found[0] + 30] if found else [])


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('storm') / 'db.sqlite3'}"
    prepare(url)
    return url


@dataclass(frozen=True)
class Postgres:
    url: str  # the storm's own database
    admin_url: str  # the server's database named by TEST_POSTGRES_URL, for pg_stat_activity
    name: str


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    admin_url = os.environ.get("TEST_POSTGRES_URL")
    if not admin_url:
        pytest.skip("TEST_POSTGRES_URL is not set: no PostgreSQL server to storm")
    psycopg = pytest.importorskip("psycopg")
    name = f"storm_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    try:
        db = Postgres(urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}")), admin_url, name)
        prepare(db.url)
        yield db
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def stuck_sessions(db: Postgres) -> list[tuple[Any, ...]]:
    """Sessions of the storm's database left in a FETCH (an open cursor) or inside a transaction."""
    import psycopg

    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, left(query, 80) FROM pg_stat_activity WHERE datname = %s"
            " AND (state LIKE 'idle in transaction%%' OR query ILIKE 'FETCH%%')",
            [db.name],
        ).fetchall()


# Clients ---------------------------------------------------------------------------------------------


async def connect(port: int, target: str, method: str = "GET") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that has sent one request, and whose close is a TCP reset."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


def reset(writer: asyncio.StreamWriter) -> float:
    """Leave with a TCP reset; when, on the monotonic clock the server's records use too."""
    writer.transport.abort()
    return time.monotonic()


def is_whole(answer: bytes) -> bool:
    """A 200 whose body is all there: the chunked terminator, or as many bytes as Content-Length says."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        return False
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) == int(line.split(b":")[1])
    return body.endswith(b"0\r\n\r\n")


async def report(port: int, timeout: float = 5.0, **query: str) -> dict[str, Any]:
    """``/storm/report/``: the server's counts, tasks and threads (see tests/support/storm_views.py)."""
    reader, writer = await connect(port, f"/storm/report/?{urlencode(query)}")
    try:
        answer = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    assert is_whole(answer), answer[:300]
    result: dict[str, Any] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return result


async def poll(port: int, done: Callable[[dict[str, Any]], bool], within: float, **query: str) -> dict[str, Any]:
    """The report, asked again until ``done(report)`` or ``within`` seconds have passed; the last one."""
    deadline = time.monotonic() + within
    while True:
        current = await report(port, **query)
        if done(current) or time.monotonic() > deadline:
            return current
        await asyncio.sleep(0.01)  # the pace of the polls: what ends the wait is done() or the deadline


async def warm_up(port: int) -> dict[str, Any]:
    """Whole answers from a stream and from exports (Django loaded, a cursor used), then the baseline report."""
    baseline = await report(port, timeout=30)  # the first one also waits for the server to start
    assert baseline["dualstream"].startswith(str(ROOT)), baseline["dualstream"]  # this tree's code is served
    for target in (
        "/storm/endless/?stream=1&n=2",
        "/storm/rows/?format=ndjson",
        "/storm/rows/?format=json",
    ):
        reader, writer = await connect(port, target)
        try:
            assert is_whole(await asyncio.wait_for(reader.read(-1), 10)), target
        finally:
            writer.close()
    return await poll(port, lambda r: r["started"] == r["finished"], within=5)


async def settled(port: int, baseline: dict[str, Any], within: float) -> dict[str, Any]:
    """The report once every producer has finished and the tasks are back to the baseline (or at the deadline)."""
    return await poll(
        port,
        lambda r: (
            r["started"] == r["finished"] and r["tasks"] <= baseline["tasks"] + TASK_TOLERANCE and not r["topics"]
        ),
        within=within,
    )


def assert_settled(now: dict[str, Any], baseline: dict[str, Any], context: str) -> None:
    orphans = now["started"] - now["finished"]
    assert orphans == 0, f"{orphans} of {now['started']} produce() finally blocks did not run; {context}"
    tasks = now["tasks"] - baseline["tasks"]
    assert tasks <= TASK_TOLERANCE, f"{tasks} asyncio tasks more than before (threads: {now['threads']}); {context}"
    assert not now["topics"], f"{now['topics']} broadcast topics still followed with every client gone; {context}"


async def assert_quiet_log(server: Server, port: int, context: str) -> None:
    await report(port, collect="1")  # whatever the garbage collector would finalize, finalized now
    count, excerpt = server.alarms()
    assert not count, (
        f"{count} alarming lines in the server's log ({server.log}); {context}; from the first:\n{excerpt}"
    )


# Storms ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    path: str
    finite: bool = False  # the whole answer comes within seconds: a client may read it to the end
    database: bool = False


TARGETS = [
    Target("/storm/endless/?stream=1"),
    Target("/storm/endless/?format=ndjson"),
    Target("/storm/endless-streamed/?format=json"),
    Target("/storm/slow/?stream=1"),
    Target("/storm/slow/?format=ndjson"),
    Target("/storm/slow/?format=json"),  # buffered: nothing is ever sent
    Target("/storm/flood/?stream=1"),
    Target("/storm/flood/?format=ndjson"),
    Target("/storm/flood-streamed/?format=json"),
    Target("/storm/rows/?format=json", finite=True, database=True),
    Target("/storm/rows-streamed/?format=json", finite=True, database=True),
    Target("/storm/rows/?format=sse", finite=True, database=True),
    Target("/storm/rows/?format=ndjson", finite=True, database=True),
    # The demo's own endpoints, as the storm requested them (not counted: they are not Tracked).
    Target("/api/readings/?format=sse", finite=True, database=True),
    Target("/api/ticker/?stream=1&interval=10&from=1000"),
    Target("/api/feed/?stream=1&interval=10&count=1000"),
    # Broadcast: live, a reset for an unknown id, the recent events first, the history.
    Target("/storm/topic/?stream=1"),
    Target("/storm/topic/?format=ndjson&lastEventId=1-1"),
    Target("/storm/topic-recent/?stream=1"),
    Target("/storm/topic/?format=json", finite=True),
]
# How a client leaves: right after its request, 0-50 ms later, after its first reads (or its patience), after
# the whole answer.
CUTS = {"request": 2, "delay": 4, "bytes": 3, "whole": 1}


@dataclass(frozen=True)
class Visit:
    target: Target
    cut: str
    delay: float  # "delay": seconds between the request and the cut
    reads: int  # "bytes": reads after the first one
    patience: float  # "bytes": seconds it waits for each read before it cuts anyway


def plan(seed: int, count: int) -> list[Visit]:
    rng = random.Random(seed)
    visits = []
    for _ in range(count):
        target = rng.choice(TARGETS)
        cut = rng.choices(list(CUTS), weights=list(CUTS.values()))[0]
        if cut == "whole" and not target.finite:
            cut = "bytes"
        visits.append(Visit(target, cut, rng.uniform(0, 0.05), rng.randint(0, 3), rng.uniform(0.1, FIRST_BYTES)))
    return visits


async def visit(port: int, v: Visit) -> str:
    """One client's visit; its outcome for the storm's tally."""
    try:
        reader, writer = await connect(port, v.target.path)
    except (OSError, TimeoutError):
        return "no connection"
    try:
        if v.cut == "delay":
            await asyncio.sleep(v.delay)  # the moment of the cut, drawn by the plan
        elif v.cut == "bytes":
            for _ in range(1 + v.reads):
                if not await asyncio.wait_for(reader.read(4096), v.patience):
                    break
        elif v.cut == "whole":
            return "whole" if is_whole(await asyncio.wait_for(reader.read(-1), 4 * FIRST_BYTES)) else "broken answer"
    except TimeoutError:
        return f"{v.cut}: timeout"
    except OSError as exc:
        return f"{v.cut}: {type(exc).__name__}"
    finally:
        reset(writer)
    return v.cut


async def storm(port: int, visits: list[Visit], database_slots: int) -> Counter[str]:
    """Every visit, ``CONCURRENCY`` at a time; visits still running after ``STORM_LIMIT`` count as "unfinished"."""
    slots, db_slots = asyncio.Semaphore(CONCURRENCY), asyncio.Semaphore(database_slots)

    async def one(v: Visit) -> str:
        if v.target.database:
            async with db_slots, slots:
                return await visit(port, v)
        async with slots:
            return await visit(port, v)

    tasks = [asyncio.create_task(one(v)) for v in visits]
    done, pending = await asyncio.wait(tasks, timeout=STORM_LIMIT)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return Counter([task.result() for task in done] + ["unfinished"] * len(pending))


async def storm_and_check(server: Server, postgres: Postgres | None, database_slots: int) -> None:
    port = server.port
    baseline = await warm_up(port)
    outcomes = await storm(port, plan(SEED, VISITS), database_slots)
    context = f"seed {SEED}, outcomes {dict(outcomes)}"
    try:
        await asyncio.wait_for(report(port), 1.0)
    except TimeoutError:
        pytest.fail(f"the server did not answer a plain request within 1 s of the storm; {context}")
    assert_settled(await settled(port, baseline, within=5), baseline, context)
    if postgres is not None:
        deadline = time.monotonic() + 5
        while (stuck := await asyncio.to_thread(stuck_sessions, postgres)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the pace of the polls, up to the deadline
        assert not stuck, f"PostgreSQL sessions left in a cursor or a transaction: {stuck}; {context}"
    await assert_quiet_log(server, port, context)
    assert outcomes["broken answer"] == 0, context  # a client that read to the end got a whole 200


@pytest.mark.timeout(60)
def test_storm_sqlite(sqlite_url: str, tmp_path: Path) -> None:
    server = Server(sqlite_url, tmp_path / "server.log")
    try:
        asyncio.run(storm_and_check(server, None, CONCURRENCY))
    finally:
        server.kill()


@pytest.mark.timeout(60)
def test_storm_postgres(postgres: Postgres, tmp_path: Path) -> None:
    server = Server(postgres.url, tmp_path / "server.log")
    try:
        asyncio.run(storm_and_check(server, postgres, POSTGRES_EXPORTS))
    finally:
        server.kill()


# Faults, one per path ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    id: str
    target: str
    cut: str  # "started": once produce() has started; "produced": once it yielded 3 items; "first item": once read
    method: str = "GET"


FAULTS = [
    Fault("before-headers-slow-first-item", "/storm/slow/?stream=1", "started"),
    Fault("head-during-prime", "/storm/slow/?stream=1", "started", method="HEAD"),
    Fault(
        "batch-buffered-mid-gather",
        "/storm/endless/?format=json&interval=0.02",
        "produced",
    ),
    Fault(
        "batch-buffered-export-mid-gather",
        "/storm/rows/?format=json&pace=0.02",
        "produced",
    ),
    Fault("mid-stream-sse", "/storm/endless/?stream=1", "first item"),
    Fault("mid-stream-export-ndjson", "/storm/rows/?format=ndjson&pace=0.02", "first item"),
    Fault(
        "mid-stream-export-batch-streamed",
        "/storm/rows-streamed/?format=json&pace=0.02",
        "first item",
    ),
]


async def leave(server: Server, fault: Fault) -> None:
    port = server.port
    baseline = await warm_up(port)
    probe = uuid.uuid4().hex
    reader, writer = await connect(port, f"{fault.target}&probe={probe}", fault.method)
    try:
        if fault.cut == "first item":
            await asyncio.wait_for(reader.readuntil(b'{"i'), 5)  # {"i": ...} and {"id": ...}
        else:
            least = 3 if fault.cut == "produced" else 0
            seen = await poll(
                port,
                lambda r: r["probe"] is not None and r["probe"]["produced"] >= least,
                5,
                probe=probe,
            )
            assert seen["probe"] is not None, "produce() did not start"
            assert seen["probe"]["produced"] >= least, seen["probe"]
    finally:
        cut_at = reset(writer)
    record = (await poll(port, lambda r: r["probe"]["finished_at"] is not None, within=2, probe=probe))["probe"]
    assert record["finished_at"] is not None, f"produce()'s finally did not run within 2 s of the cut: {record}"
    assert record["exit"] in ("cancelled", "closed"), record
    assert record["finished_at"] - cut_at < 0.1, f"finally ran {record['finished_at'] - cut_at:.3f} s after the cut"
    if fault.cut == "started":
        assert record["produced"] == 0, record  # the cut came before the first item, as meant
    assert_settled(await settled(port, baseline, within=2), baseline, fault.id)
    await assert_quiet_log(server, port, fault.id)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.id)
def test_a_client_that_leaves_has_its_producer_closed_at_once(fault: Fault, sqlite_url: str, tmp_path: Path) -> None:
    server = Server(sqlite_url, tmp_path / "server.log")
    try:
        asyncio.run(leave(server, fault))
    finally:
        server.kill()
