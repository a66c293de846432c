"""A server in a subprocess for the shutdown and server tests, watched through its log."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import ROOT

FINALLY = "producer finally ran"
NOISE = ("Traceback", "Task was destroyed", "already running", "ignored GeneratorExit", "Exception in ASGI")


@contextlib.contextmanager
def served_from(directory: Path, env: dict[str, str], serve: list[str]) -> Iterator[str]:
    """``python -m <serve>`` (uvicorn) in ``directory`` on a socket that listens before it starts; its base URL.

    Requests sent before the server is up wait in the backlog: nobody polls for it.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    command = [sys.executable, "-m", *serve, "--fd", str(sock.fileno()), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=directory, env=env, pass_fds=[sock.fileno()])
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A server subprocess whose output is collected by a thread, line by line."""

    def __init__(self, command: list[str], ready: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # some servers log to stdout
            text=True,
            start_new_session=True,  # a process group of its own, which kill() ends whole
        )
        threading.Thread(target=self._collect, daemon=True).start()
        self.wait_for(lambda: any(ready in line for line in self.lines), 30, f"the server never logged {ready!r}")

    def _collect(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: object, timeout: float, message: str) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():  # type: ignore[operator]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not condition()):  # type: ignore[operator]
                    raise AssertionError(f"{message}; log:\n" + "\n".join(self.lines[-40:]))
                self._changed.wait(min(left, 0.5))

    def count(self, text: str) -> int:
        with self._changed:
            return sum(line.count(text) for line in self.lines)  # workers' lines may interleave

    def stamps(self, text: str) -> list[float]:
        """The server's own time (``time.time()``) on each line ``<seconds> <text>`` it wrote.

        Not when the line got here: under load the thread reading the log reached a
        worker's "stopping" after the ends of the streams that the stop had caused.
        """
        pattern = re.compile(rf"(\d+\.\d+) {re.escape(text)}")
        with self._changed:
            return [float(at) for line in self.lines for at in pattern.findall(line)]

    def kill(self) -> None:
        """SIGKILL to the server and its workers: granian's and hypercorn's outlive a killed main process."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


def environment(settings: str = "tests.support.shutdown_settings") -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "PYTHONUNBUFFERED": "1"}
    env.pop("TEST_POSTGRES_URL", None)
    return env


def wait_listening(server: ServerProcess, port: int, timeout: float = 30) -> None:
    """For a server that logs nothing once it listens (granian logs its worker's start just before)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=timeout).close()
            return
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "the server never listened"
        try:
            server.process.wait(0.05)  # refused at once: again in 50 ms, unless the server has died
        except subprocess.TimeoutExpired:
            continue
        raise AssertionError("the server exited; log:\n" + "\n".join(server.lines[-40:]))
