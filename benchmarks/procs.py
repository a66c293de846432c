"""Server processes: start one per server under uvicorn, pinned to a core; read its CPU, memory and threads."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .servers.gcstats import gc_stats_path, held_objects_path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServerSpec:
    """One server under test: its ASGI app and how its endpoints are addressed."""

    name: str
    app: str
    prefix: str = ""
    query: dict[str, str] = field(default_factory=dict)
    django: bool = False
    needs: tuple[str, ...] = ()  # importable modules it needs

    def path(self, endpoint: str, n: int) -> str:
        return f"{self.prefix}/{endpoint}?{urlencode({'n': n, **self.query})}"


DJANGO_APP = "benchmarks.servers.django_asgi:application"
DUALSTREAM_APP = "benchmarks.servers.django_asgi:dualstream_application"
SERVERS: list[ServerSpec] = [
    ServerSpec("bare-asgi", "benchmarks.servers.bare:app"),
    ServerSpec("sse-starlette", "benchmarks.servers.starlette_sse:app", needs=("sse_starlette", "starlette")),
    ServerSpec("django-naive", DJANGO_APP, prefix="/naive", django=True, needs=("django",)),
    ServerSpec(
        "dualstream", DUALSTREAM_APP, prefix="/ds", query={"stream": "1"}, django=True, needs=("django", "dualstream")
    ),
]
BASELINE = "django-naive"


def raise_nofile() -> int:
    """Raise this process's open-file limit to its hard limit; return the new limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _child_setup(core: int | None) -> None:
    """Runs in the server process before exec: pin it, raise its fd limit, die with the parent."""
    if core is not None:
        os.sched_setaffinity(0, {core})
    raise_nofile()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """A running uvicorn process serving one ``ServerSpec``."""

    def __init__(self, spec: ServerSpec, core: int | None) -> None:
        self.spec = spec
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
        if spec.django:
            env["DJANGO_SETTINGS_MODULE"] = "benchmarks.servers.django_settings"
        cmd = [
            sys.executable, "-m", "uvicorn", spec.app,
            "--host", HOST, "--port", str(self.port),
            "--loop", "uvloop", "--http", "httptools", "--lifespan", "off",
            "--no-access-log", "--log-level", "warning", "--backlog", "4096",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, start_new_session=True, preexec_fn=lambda: _child_setup(core)
        )
        self.pid = self.proc.pid

    async def wait_ready(self, timeout: float = 30.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited with {self.proc.returncode} while starting")
            try:
                _, writer = await asyncio.open_connection(HOST, self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
        raise RuntimeError(f"{self.spec.name} did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within 3 s (uvicorn may wait for open streams)."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(3)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    # /proc readings ---------------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process (all threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime: fields 14 and 15

    def status(self) -> dict[str, str]:
        with open(f"/proc/{self.pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)

    def rss_kib(self) -> int:
        return int(self.status()["VmRSS"].split()[0])

    def threads(self) -> int:
        return int(self.status()["Threads"])

    async def gc_stats(self, timeout: float = 5.0) -> dict[str, Any]:
        """The server's GC pauses so far (see ``servers/gcstats.py``); the longest is since the last call."""
        return await self._report(signal.SIGUSR1, gc_stats_path(self.pid), "its GC pauses", timeout)

    def freeze_objects(self) -> None:
        """Freeze every object in the server: ``held_objects()`` counts what is created after."""
        os.kill(self.pid, signal.SIGUSR2)

    async def held_objects(self, timeout: float = 10.0) -> dict[str, int]:
        """The tracked objects created since ``freeze_objects()`` and still alive, by type (``servers/gcstats.py``)."""
        return await self._report(signal.SIGUSR2, held_objects_path(self.pid), "the objects it holds", timeout)

    async def _report(self, signum: int, path: str, what: str, timeout: float) -> Any:
        """Signal the server, then read the JSON file it writes in answer."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.kill(self.pid, signum)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                with open(path) as f:
                    report = json.load(f)
                os.unlink(path)
                return report
            except FileNotFoundError:
                await asyncio.sleep(0.01)
        raise RuntimeError(f"{self.spec.name} did not report {what}")
