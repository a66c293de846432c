"""A light SSE client on raw asyncio sockets: it counts events, it does not parse them.

Every event the servers send has exactly one ``data:`` line, so counting ``\\ndata:`` in the raw
bytes (across reads; the line before it is a blank line or a chunk-size line) counts events,
whatever the line separator (sse-starlette uses CRLF) and however writes were coalesced.
Comments (heartbeats, pings) are not counted; a final ``done`` event is.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from .procs import HOST

MARK = b"\ndata:"


def request(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n"
        "User-Agent: dualstream-bench\r\nConnection: close\r\n\r\n"
    ).encode()


class SSECounter(asyncio.Protocol):
    """Sends one request and counts the events of the answer until the server closes."""

    def __init__(self, path: str) -> None:
        loop = asyncio.get_running_loop()
        self._request = request(path)
        self._tail = b""
        self.transport: asyncio.Transport | None = None
        self.status: int | None = None
        self.events = 0
        self.nbytes = 0
        self.t_sent = 0.0
        self.t_first = 0.0
        self.t_last = 0.0  # when the latest event arrived
        self.t_end = 0.0
        self.responded: asyncio.Future[None] = loop.create_future()  # the answer's first bytes (its headers)
        self.first_event: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.t_sent = time.perf_counter()
        self.transport.write(self._request)  # type: ignore[union-attr]

    def data_received(self, data: bytes) -> None:
        if self.status is None:
            try:
                self.status = int(data.split(b" ", 2)[1])
            except (IndexError, ValueError):
                self.status = -1
            self.responded.set_result(None)
        self.nbytes += len(data)
        # Matches inside this read, plus one that straddles the previous read and this one.
        n = data.count(MARK) + (self._tail + data[: len(MARK) - 1]).count(MARK)
        self._tail = data[1 - len(MARK) :]
        if n:
            self.events += n
            self.t_last = time.perf_counter()
            if not self.first_event.done():
                self.t_first = time.perf_counter()
                self.first_event.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.t_end = time.perf_counter()
        if not self.responded.done():
            self.responded.set_result(None)  # with status None: no answer came
        if not self.first_event.done():
            self.first_event.set_result(None)  # with t_first == 0: no event came
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int, path: str) -> SSECounter:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: SSECounter(path), HOST, port)
    return protocol


@dataclass
class StreamResult:
    status: int | None
    events: int
    nbytes: int
    seconds: float  # request sent -> connection closed
    first_event: float  # request sent -> first event's bytes


async def read_stream(port: int, path: str, timeout: float) -> StreamResult:
    """One whole stream, read to the end."""
    c = await connect(port, path)
    try:
        await asyncio.wait_for(asyncio.shield(c.closed), timeout)
    finally:
        c.close()
    return StreamResult(c.status, c.events, c.nbytes, c.t_end - c.t_sent, c.t_first - c.t_sent)


async def read_streams(port: int, path: str, k: int, timeout: float) -> tuple[float, list[StreamResult]]:
    """``k`` concurrent streams read to the end; returns the wall time from the first request to the last close."""
    t0 = time.perf_counter()
    results = await asyncio.gather(*(read_stream(port, path, timeout) for _ in range(k)))
    return time.perf_counter() - t0, list(results)


async def time_to_first_event(port: int, path: str, timeout: float) -> float:
    """Seconds from writing the request (on an open connection) to receiving the first event's bytes."""
    c = await connect(port, path)
    try:
        await asyncio.wait_for(asyncio.shield(c.first_event), timeout)
        if c.status != 200 or not c.t_first:
            raise RuntimeError(f"no event from {path} (HTTP {c.status})")
        return c.t_first - c.t_sent
    finally:
        c.close()
        await asyncio.wait_for(asyncio.shield(c.closed), timeout)


async def get_json(port: int, path: str, timeout: float) -> Any:
    """A plain ``GET`` (on a new connection, closed after): its JSON body; ``RuntimeError`` unless a 200."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: application/json\r\nConnection: close\r\n\r\n".encode()
        )
        raw = await asyncio.wait_for(reader.read(), timeout)  # to the end: the server closes
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1:2]
    if status != [b"200"]:
        raise RuntimeError(f"GET {path}: {head.splitlines()[:1]!r}")
    return json.loads(body)  # every publish answer has a Content-Length


class IdleFleet:
    """Many long-lived streams that each receive an event now and then."""

    def __init__(self, port: int, path: str) -> None:
        self.port = port
        self.path = path
        self.streams: list[SSECounter] = []
        self.failed = 0

    async def open(self, k: int, batch: int, timeout: float, first_event: bool = True) -> None:
        """Open ``k`` streams, ``batch`` at a time; a stream counts as open once its first event arrived
        (``first_event=False``: once a 200's headers arrived, for a stream that starts silent)."""
        for start in range(0, k, batch):
            results = await asyncio.gather(
                *(self._open_one(timeout, first_event) for _ in range(min(batch, k - start))), return_exceptions=True
            )
            for r in results:
                if isinstance(r, SSECounter):
                    self.streams.append(r)
                else:
                    self.failed += 1

    async def _open_one(self, timeout: float, first_event: bool) -> SSECounter:
        c = await asyncio.wait_for(connect(self.port, self.path), timeout)
        try:
            if first_event:
                await asyncio.wait_for(asyncio.shield(c.first_event), timeout)
                if not c.t_first:
                    raise ConnectionError(f"closed before the first event (HTTP {c.status})")
            else:
                await asyncio.wait_for(asyncio.shield(c.responded), timeout)
                if c.status != 200 or c.closed.done():
                    raise ConnectionError(f"no open stream (HTTP {c.status})")
        except BaseException:
            c.close()
            raise
        return c

    def snapshot(self) -> list[tuple[int, float]]:
        """Per stream: (events so far, when the latest arrived)."""
        return [(c.events, c.t_last) for c in self.streams]

    def delivery(self, before: list[tuple[int, float]], period: float) -> tuple[int, float]:
        """(events received since ``before``, events a healthy server would have sent meanwhile).

        Per stream, the events after its latest one before the window are measured against the time
        between that event and its latest one now (against the whole time if none came): so the result
        does not depend on how the streams' ticks line up with the window, and a stalled stream counts.
        """
        now = time.perf_counter()
        received, expected = 0, 0.0
        for c, (events, t0) in zip(self.streams, before):
            n = c.events - events
            received += n
            expected += ((c.t_last if n else now) - t0) / period
        return received, expected

    @property
    def events(self) -> int:
        """Events received by all the streams so far."""
        return sum(c.events for c in self.streams)

    @property
    def alive(self) -> int:
        return sum(not c.closed.done() for c in self.streams)

    async def close(self, timeout: float = 10.0) -> None:
        for c in self.streams:
            c.close()
        if self.streams:
            await asyncio.wait([c.closed for c in self.streams], timeout=timeout)
