"""Export a large table through every mode; print rows/s and the server's peak memory growth.

    .venv/bin/python -m benchmarks.export_rows [--rows 1000000] [--postgres URL]

For each database (SQLite, and PostgreSQL when ``--postgres`` or ``TEST_POSTGRES_URL`` names a
server) the demo table is seeded once (idempotent, so reruns are quick), then every mode is
exported in turn, each through a fresh uvicorn subprocess on a loopback socket:

- ``sse``, ``ndjson``, ``json-streamed``: the demo's ``ReadingExport`` (a ``QuerySetView``);
- ``plain-aiterator``: NDJSON from a bare ``async for row in qs.aiterator()`` producer;
- ``json-buffered``: ``ReadingExport`` with ``batch_streaming = False`` (the library default);
- ``naive``: ``JsonResponse(list(qs.values()))``, the baseline.

The server runs on the first CPU, this process (the client) on the last.
Memory: after a warm-up request the server's peak RSS is reset (``/proc/<pid>/clear_refs``),
so "peak growth" is VmHWM after the export minus VmRSS before it. Throughput: rows over the
time from sending the request to the last byte, read by this process with httpx.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "benchmarks.export_settings"
MARKER = b'"id":'  # once per row in every mode (rows are {"id": ..., ...})
_PR_SET_PDEATHSIG = 1
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Mode:
    name: str
    path: str


MODES = [
    Mode("sse", "/api/readings/?format=sse"),
    Mode("ndjson", "/api/readings/?format=ndjson"),
    Mode("json-streamed", "/api/readings/?format=json"),
    Mode("plain-aiterator", "/plain/?format=ndjson"),
    Mode("json-buffered", "/buffered/?format=json"),
    Mode("naive", "/naive/"),
]


@dataclass(frozen=True)
class Result:
    database: str
    mode: Mode
    rows: int
    seconds: float
    first_byte: float
    cpu: float  # the server's CPU seconds (all threads) for the export
    peak_growth: int  # bytes

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def cpu_per_row(self) -> float:
        return self.cpu / self.rows


# Databases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    label: str
    url: str
    extra_env: tuple[tuple[str, str], ...] = ()

    def env(self) -> dict[str, str]:
        return {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": self.url, **dict(self.extra_env)}

    def count(self) -> int:
        if self.url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(urlsplit(self.url).path)) as db:
                return db.execute("SELECT count(*) FROM demo_reading").fetchone()[0]
        import psycopg

        with psycopg.connect(self.url) as db:
            return db.execute("SELECT count(*) FROM demo_reading").fetchone()[0]


def postgres_database(server_url: str, rows: int) -> str:
    """The URL of the benchmark's own database for ``rows`` rows on ``server_url``'s server, created if missing."""
    import psycopg

    name = f"dualstream_export_bench_{rows}"
    parts = urlsplit(server_url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            db.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


def seed(database: Database, rows: int) -> None:
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=database.env(), cwd=ROOT, check=True)
    subprocess.run([*manage, "seed_demo", "--rows", str(rows)], env=database.env(), cwd=ROOT, check=True)


# The server --------------------------------------------------------------------------------


CPUS = sorted(os.sched_getaffinity(0))


def _server_setup() -> None:
    """In the server process: die with this one, and keep to the first CPU (the client has the last)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if len(CPUS) > 1:
        os.sched_setaffinity(0, {CPUS[0]})


@contextlib.contextmanager
def server(database: Database) -> Iterator[tuple[str, int]]:
    """A uvicorn subprocess serving the benchmark URLconf: yields its base URL and pid, then stops it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # listening already: requests wait in the backlog until uvicorn accepts them
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "project.asgi:application",
        "--fd",
        str(sock.fileno()),
        "--lifespan",
        "off",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    process = subprocess.Popen(
        command, env=database.env(), cwd=ROOT, pass_fds=[sock.fileno()], preexec_fn=_server_setup
    )
    try:
        host, port = sock.getsockname()
        yield f"http://{host}:{port}", process.pid
    finally:
        sock.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid``, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


# The client --------------------------------------------------------------------------------


def fetch(client: httpx.Client, url: str) -> tuple[int, float, float]:
    """Rows in the body at ``url``, seconds to the first byte and to the last."""
    rows, tail, first = 0, b"", 0.0
    started = time.perf_counter()
    with client.stream("GET", url) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            if not first:
                first = time.perf_counter() - started
            data = tail + chunk
            rows += data.count(MARKER)
            tail = data[-(len(MARKER) - 1) :]  # a marker split across chunks is counted once, in the next
    return rows, first, time.perf_counter() - started


def measure(database: Database, mode: Mode, last_id: int) -> Result:
    with (
        server(database) as (base, pid),
        httpx.Client(
            base_url=base, timeout=httpx.Timeout(600, connect=30), headers={"Accept-Encoding": "identity"}
        ) as client,
    ):
        # Warm-up: imports, URL resolution, the first connection; then reset the peak to now.
        client.get(f"/api/readings/?format=ndjson&lastEventId={last_id - 100}").raise_for_status()
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        before, cpu = _status_kb(pid, "VmRSS"), _cpu_seconds(pid)
        rows, first, seconds = fetch(client, mode.path)
        cpu, peak = _cpu_seconds(pid) - cpu, _status_kb(pid, "VmHWM")
    return Result(database.label, mode, rows, seconds, first, cpu, (peak - before) * 1024)


# Report ------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| database | mode | rows | seconds | rows/s | vs naive | first byte (s) | server CPU µs/row | peak RSS growth (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    naive = {r.database: r.rate for r in results if r.mode.name == "naive"}
    for r in results:
        ratio = f"{r.rate / naive[r.database]:.2f}x" if r.database in naive else "-"
        lines.append(
            f"| {r.database} | {r.mode.name} | {r.rows:,} | {r.seconds:.2f} | {r.rate:,.0f} | {ratio} "
            f"| {r.first_byte:.2f} | {r.cpu_per_row * 1e6:.1f} | {r.peak_growth / 2**20:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TEST_POSTGRES_URL", ""),
        help="A PostgreSQL server URL (default: $TEST_POSTGRES_URL); empty: SQLite only.",
    )
    parser.add_argument(
        "--sqlite",
        default="",
        help="The SQLite file to seed and export (default: one per --rows in the temp directory, kept).",
    )
    parser.add_argument("--databases", default="sqlite,postgres", help="Comma-separated: sqlite, postgres.")
    parser.add_argument("--modes", default=",".join(m.name for m in MODES), help="Comma-separated modes to run.")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Export each mode this many times, each on a fresh server; report the fastest.",
    )
    parser.add_argument(
        "--no-server-side-cursors",
        action="store_true",
        help="Also export NDJSON from PostgreSQL with DISABLE_SERVER_SIDE_CURSORS.",
    )
    args = parser.parse_args(argv)
    if len(CPUS) > 1:
        os.sched_setaffinity(0, {CPUS[-1]})  # the client, off the server's CPU
    wanted = [m for m in MODES if m.name in args.modes.split(",")]

    labels = args.databases.split(",")
    sqlite_file = args.sqlite or str(Path(tempfile.gettempdir()) / f"dualstream-export-bench-{args.rows}.sqlite3")
    databases = [Database("sqlite", f"sqlite:///{sqlite_file}")] if "sqlite" in labels else []
    if "postgres" in labels and args.postgres:
        databases.append(Database("postgres", postgres_database(args.postgres, args.rows)))
    elif "postgres" in labels:
        print("export_rows: no --postgres URL or TEST_POSTGRES_URL: PostgreSQL skipped.", file=sys.stderr)

    results: list[Result] = []
    failures = []
    for database in databases:
        seed(database, args.rows)
        count = database.count()
        runs = [(database, mode) for mode in wanted]
        if args.no_server_side_cursors and database.label == "postgres":
            no_cursors = Database(
                "postgres, no server-side cursors", database.url, (("EXPORT_BENCH_NO_SERVER_SIDE_CURSORS", "1"),)
            )
            runs.append((no_cursors, next(m for m in MODES if m.name == "ndjson")))
        # Rounds over all modes rather than repeats of one: load from elsewhere on the machine hits them all alike.
        rounds = [[measure(db, mode, count) for db, mode in runs] for _ in range(args.repeat)]
        for attempts in zip(*rounds, strict=True):
            result = min(attempts, key=lambda r: r.seconds)
            print(
                f"{result.database:>10} {result.mode.name:<16} {result.rate:>12,.0f} rows/s  "
                f"{result.cpu_per_row * 1e6:5.1f} µs/row  +{result.peak_growth / 2**20:.1f} MB",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
            if result.rows != count:
                failures.append(f"{result.database} {result.mode.name}: {result.rows} rows, expected {count}")
    print(table(results))
    for failure in failures:
        print("MISMATCH:", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
