"""The longest stall of the event loop while large requests arrive, per request kind, before and after a change.

    git worktree add ../stalls-before de1cd07                         # the tree before the change
    python benchmarks/loop_stall.py --trees before=../stalls-before,after=.
    python benchmarks/loop_stall.py --kinds llm-json,batch --requests 10   # a quicker look at this tree alone

Each tree (a checkout of this project) is served by a fresh uvicorn process per kind (uvloop,
httptools, ``--lifespan off``, pinned to one core; this client on the other), with ``cwd`` = the
tree, so the tree's own ``dualstream`` and demo answer: the demo project (``project.urls``,
``DEBUG`` off, its middleware, SQLite seeded with ``--rows`` readings) plus two benchmark views
(``/bench/batch/``, ``/bench/fragment/``) and an endless ticker (``/bench/tick/``). While a 10 ms
ticker stream runs (SSE), ``--requests`` large requests of one kind are sent at once, each on
its own connection, and read to the end; meanwhile a plain request (``GET /v1/models``) is sent
again as soon as the previous one is answered. Reported per kind and tree:

* **stall**: the ticker's longest gap between two events during the burst, minus its 10 ms
  interval: the longest the loop was held (times are the kernel's receive timestamps, so this
  client's own delays do not count);
* **plain wait**: the longest answer time of the plain request during the burst;
* **burst**: the time until every large request was answered, and how many were not a 200.

Kinds (``--size-mb`` of request or answer, 2.3 MB by default):

* ``llm-json``: ``POST /v1/chat/completions``, one user message of that size (a pasted document), a
  batch answer (usage counted);
* ``llm-sse``: the same endpoint, a history of 1 KB messages of that size in all, streamed with
  ``include_usage``;
* ``batch``: a buffered JSON batch of items of ~230 bytes, that size in all;
* ``fragment``: ``render_fragment()`` of a template that size, answered to Datastar;
* ``export``: the demo's readings export, ``--rows`` rows, as a streamed JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make "benchmarks" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks import run_async
from benchmarks.broadcast import _SO_TIMESTAMPNS, receive
from benchmarks.procs import HOST, ROOT, _child_setup, free_port
from benchmarks.run import cores

KINDS = ("llm-json", "llm-sse", "batch", "fragment", "export")
# Seconds between the ticker's events: a stall shows only where it holds back an event that is due, so the
# ticker is fast (the 100 ms ticker saw a 50 ms stall one time in two).
TICK = 0.01

# The server: the tree's demo project, plus the benchmark's two views; argv: port, items, template rows.
SERVER = r"""
import asyncio, sys, types
import django
from django.conf import settings

settings.TEMPLATES[0]["DIRS"] = [*settings.TEMPLATES[0]["DIRS"], sys.argv[4]]
django.setup()
from django.core.asgi import get_asgi_application
from django.urls import include, path
from dualstream import DualModeView
from dualstream.html import render_fragment
import uvicorn

port, items, rows = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ITEMS = [{"i": i, "name": f"item {i}", "value": i * 0.5, "tags": ["alpha", "beta"], "text": "x" * 150} for i in range(items)]
ROWS = [{"i": i, "name": f"row {i}", "value": i * 0.5, "note": "y" * 40} for i in range(rows)]


class Tick(DualModeView):
    async def produce(self, request):
        n = 0
        while True:
            yield {"n": n}
            n += 1
            await asyncio.sleep(float(request.GET["interval"]))


class Batch(DualModeView):
    async def produce(self, request):
        for item in ITEMS:
            yield item


class BigFragment(DualModeView):
    async def produce(self, request):
        yield await render_fragment(request, "loop_stall.html", {"rows": ROWS}, selector="#rows", mode="inner")


urls = types.ModuleType("loop_stall_urls")
urls.urlpatterns = [
    path("bench/tick/", Tick.as_view()),
    path("bench/batch/", Batch.as_view()),
    path("bench/fragment/", BigFragment.as_view()),
    path("", include("project.urls")),
]
sys.modules[urls.__name__] = urls
settings.ROOT_URLCONF = urls.__name__
uvicorn.run(
    get_asgi_application(), host="127.0.0.1", port=port, loop="uvloop", http="httptools", lifespan="off",
    access_log=False, log_level="warning",
)
"""

TEMPLATE = (
    '<table id="rows">{% for row in rows %}<tr id="row-{{ row.i }}"><td>{{ row.name }}</td>'
    "<td>{{ row.value }}</td><td>{{ row.note }}</td></tr>\n{% endfor %}</table>\n"
)
TEMPLATE_ROW_BYTES = 104  # what one row of TEMPLATE renders to, about
ITEM_BYTES = 230  # one batch item's JSON, about


@dataclass
class Result:
    stall_ms: float
    baseline_ms: float  # the same measure over the second before the burst
    plain_max_ms: float
    plain_count: int
    burst_s: float
    failed: int
    answer_bytes: int


def chat_body(kind: str, size: int) -> bytes:
    if kind == "llm-json":
        words = ("river", "canyon", "granite", "erosion", "sediment", "the", "of", "and", "flows", "over")
        text = " ".join(words[i % 10] for i in range(size // 7))[:size]
        body = {"model": "dualstream-demo", "messages": [{"role": "user", "content": text}], "stream": False}
    else:
        sentence = "How do rivers carve canyons through solid rock over millions of years? "
        content = (sentence * 15)[:1000]
        history = [{"role": ("user", "assistant")[i % 2], "content": content} for i in range(size // 1040)]
        history.append({"role": "user", "content": "And what about glaciers?"})
        body = {
            "model": "dualstream-demo",
            "messages": history,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    return json.dumps(body).encode()


def big_request(kind: str, size: int, rows: int) -> bytes:
    head = f"Host: {HOST}\r\nConnection: close\r\n"
    if kind.startswith("llm"):
        body = chat_body(kind, size)
        return (
            f"POST /v1/chat/completions HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
    if kind == "batch":
        return f"GET /bench/batch/ HTTP/1.1\r\n{head}Accept: application/json\r\n\r\n".encode()
    if kind == "fragment":
        return f"GET /bench/fragment/ HTTP/1.1\r\n{head}Datastar-Request: true\r\n\r\n".encode()
    return f"GET /api/readings/ HTTP/1.1\r\n{head}Accept: application/json\r\n\r\n".encode()


async def fetch(request: bytes) -> tuple[int, int, int]:
    """Send ``request`` on a new connection, read the answer to its end: (status, bytes, kernel time of the end)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    await loop.sock_connect(sock, (HOST, PORT[0]))
    await loop.sock_sendall(sock, request)
    chunks: list[bytes] = []
    last = time.time_ns()
    done = loop.create_future()

    def readable() -> None:
        nonlocal last
        while (read := receive(sock)) is not None:
            data, at = read
            if not data:
                if not done.done():
                    done.set_result(None)
                return
            chunks.append(data)
            last = at or time.time_ns()

    loop.add_reader(sock.fileno(), readable)
    try:
        await asyncio.wait_for(done, 300)
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, len(answer), last


PORT = [0]  # the server under test (one at a time)


async def scenario(kind: str, size: int, count: int, rows: int) -> Result:
    loop = asyncio.get_running_loop()
    ticks: list[int] = []
    sock = socket.socket()
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    await loop.sock_connect(sock, (HOST, PORT[0]))
    path = f"/bench/tick/?interval={TICK}"
    await loop.sock_sendall(sock, f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode())

    def tick() -> None:
        while (read := receive(sock)) is not None:
            data, at = read
            if not data:
                loop.remove_reader(sock.fileno())
                return
            ticks.extend([at or time.time_ns()] * data.count(b"\ndata: "))

    loop.add_reader(sock.fileno(), tick)
    request = big_request(kind, size, rows)
    plain = f"GET /v1/models HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    try:
        await asyncio.sleep(1.5)  # the ticker settles
        baseline_from = time.time_ns() - 1_000_000_000
        started = time.time_ns()
        burst = asyncio.gather(*(fetch(request) for _ in range(count)))
        waits: list[int] = []
        while not burst.done():
            sent = time.time_ns()
            _, _, answered = await fetch(plain)
            waits.append(answered - sent)
            await asyncio.sleep(0.02)
        answers = await burst
        ended = max(end for _, _, end in answers)
        await asyncio.sleep(2 * TICK)
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()

    def longest_gap(start: int, end: int) -> float:
        inside = [t for t in ticks if start <= t <= end]
        before = [t for t in ticks if t < start][-1:]
        after = [t for t in ticks if t > end][:1]
        times = before + inside + after
        return max((b - a for a, b in itertools.pairwise(times)), default=0) / 1e6

    return Result(
        stall_ms=max(0.0, longest_gap(started, ended) - TICK * 1000),
        baseline_ms=max(0.0, longest_gap(baseline_from, started) - TICK * 1000),
        plain_max_ms=max(waits, default=0) / 1e6,
        plain_count=len(waits),
        burst_s=(ended - started) / 1e9,
        failed=sum(status != 200 for status, _, _ in answers),
        answer_bytes=sum(n for _, n, _ in answers) // max(1, count),
    )


def server(tree: Path, kind: str, size: int, rows: int, workdir: Path, core: int | None) -> subprocess.Popen[bytes]:
    PORT[0] = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=str(tree),
        DJANGO_SETTINGS_MODULE="project.settings",
        SECRET_KEY="loop-stall-benchmark",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DEMO_LLM_TOKEN_DELAY="0.001",
    )
    items = size // ITEM_BYTES if kind == "batch" else 0
    template_rows = size // TEMPLATE_ROW_BYTES if kind == "fragment" else 0
    args = [str(PORT[0]), str(items), str(template_rows), str(workdir)]
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, *args],
        cwd=tree,
        env=env,
        start_new_session=True,
        preexec_fn=lambda: _child_setup(core),
    )


async def wait_listening(proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection(HOST, PORT[0])
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError("the server did not listen within 30 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def seed(workdir: Path, rows: int) -> None:
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="project.settings",
        SECRET_KEY="loop-stall-benchmark",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
    )
    for command in (["migrate", "--noinput", "-v0"], ["seed_demo", "--rows", str(rows)]):
        subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)


async def main(args: argparse.Namespace) -> None:
    trees = dict(item.split("=", 1) for item in args.trees.split(","))
    kinds = [k.strip() for k in args.kinds.split(",")]
    size = int(args.size_mb * 1_000_000)
    client_core, server_core = cores()
    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    print(
        f"{args.requests} requests per burst, {args.size_mb} MB each (export: {args.rows} rows), a {TICK * 1000:.0f} ms "
        f"ticker; server on CPU {server_core}, client on CPU {client_core}; {args.runs} run(s), the one of median stall shown"
    )
    runs: dict[tuple[str, str], list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="loop-stall-") as tmp:
        workdir = Path(tmp)
        (workdir / "loop_stall.html").write_text(TEMPLATE)
        if "export" in kinds:
            seed(workdir, args.rows)
        for kind in kinds:
            for _ in range(args.runs):
                for name, tree in trees.items():  # interleaved, so that the machine's load falls on both alike
                    proc = server(Path(tree).resolve(), kind, size, args.rows, workdir, server_core)
                    try:
                        await wait_listening(proc)
                        result = await scenario(kind, size, args.requests, args.rows)
                    finally:
                        stop(proc)
                    runs.setdefault((kind, name), []).append(result)
                    print(f"  {kind:9} {name:8} stall {result.stall_ms:8.1f} ms", file=sys.stderr)

    # The run of median stall, whole: its figures belong together.
    results = {key: sorted(rs, key=lambda r: r.stall_ms)[len(rs) // 2] for key, rs in runs.items()}
    names = list(trees)
    print()
    print(
        "| kind | tree | stall (ms) | before the burst (ms) | plain request, longest wait (ms) | burst (s) | not 200 | answer (bytes) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind in kinds:
        for name in names:
            r = results[kind, name]
            print(
                f"| {kind} | {name} | {r.stall_ms:,.1f} | {r.baseline_ms:,.1f} | {r.plain_max_ms:,.1f} "
                f"({r.plain_count} sent) | {r.burst_s:.2f} | {r.failed} | {r.answer_bytes:,} |"
            )
    if len(names) == 2:
        first, second = names
        print()
        print(f"| kind | stall, {second}/{first} | plain wait, {second}/{first} | burst time, {second}/{first} |")
        print("| --- | ---: | ---: | ---: |")
        for kind in kinds:
            a, b = results[kind, first], results[kind, second]
            print(
                f"| {kind} | {_ratio(b.stall_ms, a.stall_ms)} | {_ratio(b.plain_max_ms, a.plain_max_ms)} "
                f"| {_ratio(b.burst_s, a.burst_s)} |"
            )


def _ratio(new: float, old: float) -> str:
    return f"{new / old:.3f}x" if old > 0 else "-"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", default="after=.", help="name=path of each checkout, e.g. before=../b,after=.")
    parser.add_argument("--kinds", default=",".join(KINDS), help=f"some of {', '.join(KINDS)}")
    parser.add_argument("--requests", type=int, default=20, help="large requests sent at once (20)")
    parser.add_argument("--size-mb", type=float, default=2.3, help="size of each request or answer (2.3)")
    parser.add_argument("--rows", type=int, default=20_000, help="readings in the export (20,000)")
    parser.add_argument(
        "--runs", type=int, default=1, help="runs per kind and tree; the one of median stall is shown (1)"
    )
    run_async(main(parser.parse_args()))
