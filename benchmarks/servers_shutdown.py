"""SIGTERM with 100 streams open, under every ASGI server and protocol: the table in docs/deployment.md.

    python -m benchmarks.servers_shutdown                  # every server, 100 streams each
    python -m benchmarks.servers_shutdown --streams 400 --only daphne
    python -m benchmarks.servers_shutdown --recycle --streams 500   # gunicorn --max-requests 100

Each server serves tests/support/shutdown_views.py's ``/endless/`` (an event a second) in a fresh process.
HTTP/1.1 streams have a connection each; HTTP/2 streams share one connection, read by the raw
client of tests/support/streamclients.py (httpx cannot read a stream that ends after a GOAWAY). Once the
first event of every stream has arrived the server gets SIGTERM; the client reads for 6 s at most,
closes once every stream has ended (as a browser does), and the process gets 10 s to exit.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.serverprocess import FINALLY, ServerProcess
from tests.support.servers import APP, CASES, UVICORN, Case, Certificate, make_certificate

GUNICORN = ("gunicorn", APP, "--bind", "127.0.0.1:{port}", "--workers", "1")
ALL = {
    "uvicorn http/1.1": UVICORN,
    "gunicorn + uvicorn_worker.UvicornWorker": Case(
        "uvicorn_worker", (*GUNICORN, "-k", "uvicorn_worker.UvicornWorker"), "Booting worker"
    ),
    "gunicorn + dualstream.workers.UvicornWorker": Case(
        "uvicorn_worker", (*GUNICORN, "-k", "dualstream.workers.UvicornWorker"), "Booting worker"
    ),
    **CASES,
}


def measure(case: Case, cert: Certificate, count: int) -> str:
    from tests.support.streamclients import H1Client, H2Client

    server: ServerProcess
    server, port = case.start(cert)
    try:
        client = H2Client(port, cert.context if case.tls else None) if case.http2 else H1Client(port)
        ids = [client.get("/endless/") for _ in range(count)]
        if not client.read_until(lambda: all(b"data:" in client.streams[i].body for i in ids), 30):
            return "streams did not start"
        streams = [client.streams[i] for i in ids]
        stopped_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        client.read_until(lambda: all(s.ended or s.reset for s in streams), 6)
        last_end = max((s.arrivals[-1] for s in streams if s.ended), default=stopped_at) - stopped_at
        client.close()
        try:
            server.process.wait(10)
            exit_after = f"{time.monotonic() - stopped_at:.2f} s"
        except Exception:
            exit_after = "**no exit in 10 s**"
        hints = sum(b"retry: 1000\n" in s.body and s.ended for s in streams)
        return (
            f"{hints}/{count} hints, {sum(s.ended for s in streams)} clean ends (last {last_end:.2f} s), "
            f"{min(server.count(FINALLY), count)} finally, exit {exit_after}"
        )
    finally:
        server.kill()


def recycle(worker: str, count: int, requests: int = 300, limit: int = 100) -> str:
    """gunicorn, 2 workers with ``--max-requests``: ``count`` streams open, then plain requests one by one."""
    import socket

    from tests.support.serverprocess import environment, free_port, wait_listening
    from tests.support.streamclients import H1Client

    port = free_port()
    command = [sys.executable, "-m", *GUNICORN, "-k", worker, "--max-requests", str(limit)]
    command = [part.format(port=port) for part in command]
    command[command.index("--workers") + 1] = "2"
    server = ServerProcess(command, "Booting worker", environment())
    try:
        wait_listening(server, port)
        client = H1Client(port)
        ids = [client.get("/endless/") for _ in range(count)]
        client.read_until(lambda: all(b"data:" in client.streams[i].body for i in ids), 30)
        failed = 0
        started = time.monotonic()
        for n in range(requests):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
                    sock.sendall(b"GET /plain/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    answer = b""
                    while chunk := sock.recv(65536):
                        answer += chunk
                failed += not answer.startswith(b"HTTP/1.1 200")
            except TimeoutError:
                return f"{failed} failed, then request {n + 1} timed out after 15 s: outage ({time.monotonic() - started:.1f} s in)"
            except OSError:
                failed += 1
            client.read_until(lambda: False, 0)
        client.read_until(lambda: all(client.streams[i].ended or client.streams[i].reset for i in ids), 5)
        hints = sum(b"retry: 1000\n" in client.streams[i].body for i in ids)
        client.close()
        return (
            f"{failed}/{requests} plain requests failed in {time.monotonic() - started:.1f} s; "
            f"{hints}/{count} streams got the hint; {server.count('Booting worker') - 2} workers replaced"
        )
    finally:
        server.kill()


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--recycle", action="store_true", help="gunicorn --max-requests 100 instead, both workers")
    args = parser.parse_args()
    if args.recycle:
        for worker in ("uvicorn_worker.UvicornWorker", "dualstream.workers.UvicornWorker"):
            print(f"| {worker} | {recycle(worker, args.streams)} |", flush=True)
        return
    cert = make_certificate(Path(tempfile.mkdtemp()))
    print("| server, protocol | SIGTERM with", args.streams, "streams open |\n|---|---|")
    for name, case in ALL.items():
        if args.only not in name:
            continue
        if importlib.util.find_spec(case.package) is None:
            print(f"| {name} | not installed |")
            continue
        print(f"| {name} | {measure(case, cert, args.streams)} |", flush=True)


if __name__ == "__main__":
    main()
