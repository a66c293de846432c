"""OS threads of a Django server while thousands of streams open at once, idle, then all leave.

Django's ASGI handler gives every request a thread of its own for its synchronous parts (its
signals, ORM calls), from the request's start to its end. dualstream gives it back while a stream
idles (``release_request_thread``), so the count that matters is the burst: how many threads exist
at once while requests arrive, and while they all leave. The server's thread count is read from
``/proc`` every 5 ms; the table has the peak of each phase.

    python -m benchmarks.thread_burst [--streams 2000] [--concurrency 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct

from benchmarks import run_async
from benchmarks.procs import HOST, SERVERS, Server, raise_nofile
from benchmarks.servers.payloads import TICK_SECONDS


class Sampler:
    """The peak thread count of a process, sampled in the background until stopped."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.server.threads())
            await asyncio.sleep(0.005)

    def __enter__(self) -> Sampler:
        self.peak = self.server.threads()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def open_stream(port: int, path: str, limit: asyncio.Semaphore) -> socket.socket:
    """A stream whose first bytes have arrived; its socket, to cut later."""
    async with limit:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode())
        await reader.readuntil(b"data:")
        sock: socket.socket = writer.get_extra_info("socket").dup()
        writer.transport.abort()
        return sock


def cut(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # a reset, at once
    sock.close()


async def settle(server: Server, idle: int, timeout: float = 60.0) -> float:
    """Seconds until the server is back to ``idle`` threads (or ``timeout``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while server.threads() > idle and loop.time() - started < timeout:
        await asyncio.sleep(0.05)
    return loop.time() - started + 2.0  # the leaving phase's 2 s


async def main(streams: int, concurrency: int) -> None:
    raise_nofile()
    spec = next(s for s in SERVERS if s.name == "dualstream")
    server = Server(spec, core=None)
    try:
        await server.wait_ready()
        idle = server.threads()
        limit = asyncio.Semaphore(concurrency)
        with Sampler(server) as opening:
            sockets = await asyncio.gather(
                *(open_stream(server.port, spec.path("tick", 10**9), limit) for _ in range(streams))
            )
        await asyncio.sleep(3 * TICK_SECONDS)  # each stream gives its thread back between two ticks
        open_threads = server.threads()
        with Sampler(server) as leaving:
            for sock in sockets:
                cut(sock)
            await asyncio.sleep(2.0)  # the measured phase: the server ends every stream meanwhile
        print(f"{streams:,} streams, {concurrency:,} opening at a time (dualstream, uvicorn, one process)")
        print("| phase | OS threads (peak) |")
        print("|---|---:|")
        print(f"| idle server | {idle} |")
        print(f"| while opening | {opening.peak} |")
        print(f"| all open, idle | {open_threads} |")
        print(f"| while all leave | {leaving.peak} |")
        settled = await settle(server, idle)
        print(f"| {settled:.1f} s later | {server.threads()} |")
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=2000)
    args = parser.parse_args()
    run_async(main(args.streams, args.concurrency))
