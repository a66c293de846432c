"""Several processes on one Redis: two uvicorn workers, a publisher in a third, clients that move between workers."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.broadcast import redis_reason, sse_lines
from tests.support.paths import ROOT

PREFIX = f"dualstream-test:{uuid.uuid4().hex[:8]}:live:"

pytestmark = pytest.mark.skipif(redis_reason() is not None, reason=str(redis_reason()))


def environment() -> dict[str, str]:
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.support.broadcast_settings",
        BROADCAST_TEST_PREFIX=PREFIX,
        TEST_REDIS_URL=os.environ.get("TEST_REDIS_URL", ""),
        PYTHONPATH=str(ROOT),
    )


class Worker:
    """``uvicorn project.asgi:application`` in its own process, on a free port."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "project.asgi:application", "--lifespan", "off",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
            cwd=ROOT, env=environment(),
        )  # fmt: skip

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"uvicorn exited with {self.proc.returncode}"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                threading.Event().wait(0.05)  # the port is not bound yet: nothing to wait on but time
        raise AssertionError("uvicorn did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Publisher:
    """``manage.py publish TOPIC -``: one process, one event per line written to it, its id read back."""

    def __init__(self, topic: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "publish", topic, "-"],
            cwd=ROOT, env=environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def publish(self, data: object) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(data) + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        assert self.proc.wait(10) == 0
        self.proc.stdout.close()


class Client(threading.Thread):
    """An SSE client that resumes with Last-Event-ID on the next worker when its connection drops."""

    def __init__(self, urls: list[str], topic: str, last_id: str) -> None:
        super().__init__(daemon=True)
        self.urls, self.topic, self.last_id = urls, topic, last_id
        self.events: queue.Queue[tuple[str, dict[str, int]]] = queue.Queue()
        self.connections: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        attempt = 0
        while not self.stop.is_set() and attempt < 5:
            url = self.urls[min(attempt, len(self.urls) - 1)]
            self.connections.append(url)
            try:
                with httpx.stream(
                    "GET", f"{url}/topic/{self.topic}/?stream=1", headers={"Last-Event-ID": self.last_id}, timeout=10
                ) as response:
                    for event in sse_lines(response, self.stop):
                        self.last_id = event["id"]
                        self.events.put((event["id"], json.loads(event["data"])))
            except httpx.HTTPError:
                attempt += 1

    def take(self, n: int, timeout: float = 20) -> list[tuple[str, dict[str, int]]]:
        return [self.events.get(timeout=timeout) for _ in range(n)]


@pytest.fixture
def workers() -> Iterator[tuple[Worker, Worker]]:
    a, b = Worker(), Worker()
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b
    finally:
        a.stop()
        b.stop()
        import redis

        client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
        for key in client.scan_iter(match=PREFIX + "*"):
            client.delete(key)


def test_every_client_on_every_worker_gets_every_event_and_survives_a_killed_worker(
    workers: tuple[Worker, Worker],
) -> None:
    a, b = workers
    publisher = Publisher("live")
    start = publisher.publish({"n": 0})
    # Each client starts after the same id: replay makes its join race-free, whenever it lands.
    clients = [Client([a.url, b.url], "live", start) for _ in range(3)]
    clients += [Client([b.url, a.url], "live", start) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        ids = [publisher.publish({"n": n}) for n in range(1, 11)]
        for client in clients:
            assert client.take(10) == [(i, {"n": n}) for i, n in zip(ids, range(1, 11))]
        a.proc.send_signal(signal.SIGKILL)  # mid-stream: its clients move to b and resume
        ids += [publisher.publish({"n": n}) for n in range(11, 21)]
        for client in clients:
            assert client.take(10) == [(i, {"n": n}) for i, n in zip(ids[10:], range(11, 21))]
            assert client.events.empty()
        assert all(c.connections == [a.url, b.url] for c in clients[:3])
        assert all(c.connections == [b.url] for c in clients[3:])
    finally:
        publisher.close()
        for client in clients:
            client.stop.set()
        for client in clients:
            client.join(10)
