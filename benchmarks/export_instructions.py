"""CPU instructions per exported row, in every mode and for the naive view: a ratio no neighbour can shake.

    .venv/bin/python -m benchmarks.export_instructions [--rows 10000] [--modes ...] [--postgres URL]

``export_rows`` times real exports over a socket, which on a shared VM swings by tens of percent
from one run to the next. This counts what the server's own code executes instead: each mode is
exported once through Django's ASGI application, in a process of its own run under valgrind's
callgrind (which counts every instruction, the database thread's included), from two tables
(SQLite, or PostgreSQL with ``--postgres``) that differ by ``--rows`` rows; the difference in instructions, divided by ``--rows``, is
the cost of one row, free of start-up and of noise (``PYTHONHASHSEED=0``; uvloop when installed,
as under uvicorn). What it leaves out is what a socket adds: the kernel's work, and the memory
stalls of the naive view's hundreds of megabytes, so it is a floor for the naive view's cost.

Needs ``valgrind`` on the PATH (Debian: ``apt install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks import run_async
from benchmarks.export_rows import MARKER, MODES, ROOT, Database, Mode, postgres_database, seed


def _export(path: str) -> int:
    """In the child: one export of ``path`` through the project's ASGI application; the rows in its body."""
    from project.asgi import application

    route, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": route,
        "raw_path": route.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    body = bytearray()
    client: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    client.put_nowait({"type": "http.request", "body": b"", "more_body": False})  # then nothing: it never leaves

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise SystemExit(f"{path}: status {message['status']}")
        if message["type"] == "http.response.body":
            body.extend(message.get("body", b""))  # type: ignore[arg-type]

    run_async(application(scope, client.get, send))
    return body.count(MARKER)


def instructions(database: Database, mode: Mode, rows: int) -> int:
    """Instructions callgrind counts for one export of ``mode`` (``rows`` rows expected)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.export_instructions",
        "--child",
        mode.path,
    ]
    env = {**database.env(), "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    exported = re.search(r"^exported (\d+)$", done.stdout, re.MULTILINE)
    if done.returncode or not exported or int(exported.group(1)) != rows:
        raise SystemExit(f"{mode.name} on {rows} rows failed:\n{done.stdout}\n{done.stderr[-2000:]}")
    collected = re.search(r"Collected : (\d+)", done.stderr)
    assert collected, done.stderr[-2000:]
    return int(collected.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="The difference in rows between the two tables.")
    parser.add_argument("--base", type=int, default=4_000, help="Rows in the smaller table.")
    parser.add_argument("--modes", default=",".join(m.name for m in MODES), help="Comma-separated modes to run.")
    parser.add_argument(
        "--postgres", default="", help="A PostgreSQL server URL: export from its tables instead of SQLite's."
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(f"exported {_export(args.child)}")
        return 0
    if shutil.which("valgrind") is None:
        print("export_instructions: valgrind is not on the PATH (apt install valgrind).", file=sys.stderr)
        return 2

    sizes = (args.base, args.base + args.rows)
    databases = {}
    for size in sizes:
        if args.postgres:
            database = Database("postgres", postgres_database(args.postgres, size))
        else:
            database = Database(
                "sqlite", f"sqlite:///{Path(tempfile.gettempdir()) / f'dualstream-instructions-{size}.sqlite3'}"
            )
        seed(database, size)
        databases[size] = database
    modes = [m for m in MODES if m.name in args.modes.split(",")]
    runs = [(mode, size) for mode in modes for size in sizes]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # counts do not depend on the load
        counts = dict(zip(runs, pool.map(lambda run: instructions(databases[run[1]], *run), runs), strict=True))

    per_row = {mode.name: (counts[mode, sizes[1]] - counts[mode, sizes[0]]) / args.rows for mode in modes}
    naive = per_row.get("naive")
    label = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"{label}, {args.rows:,} rows between tables of {sizes[0]:,} and {sizes[1]:,}; Python {sys.version.split()[0]}"
    )
    print("| mode | instructions per row | naive ÷ mode |")
    print("|---|---:|---:|")
    for name, cost in per_row.items():
        print(f"| {name} | {cost:,.0f} | {f'{naive / cost:.3f}' if naive else '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
