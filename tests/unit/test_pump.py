"""The pump alone, on an event loop with a virtual clock and a scripted client: no sockets, no sleeps.

Time passes only when every task waits: the loop then jumps to its next
timer. So "15 s of silence" takes no time, and the order of events is exact.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from contextlib import aclosing
from itertools import pairwise
from typing import Any

import pytest
import uvloop

from dualstream import pump as pump_module
from dualstream.encoding import compact_dumps
from dualstream.events import Event, Reconnect
from dualstream.pump import TURN_BYTES, TURN_SECONDS, Deadlines, EndReason, Pump, Send, StreamEnd
from dualstream.renderers import JSONArrayRenderer, NDJSONRenderer, Renderer, SSERenderer
from dualstream.turns import turns_of

dumps = compact_dumps(json.JSONEncoder)


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing is ready to run."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        select = self._selector.select  # type: ignore[attr-defined]

        def jump(timeout: float | None = None) -> Any:
            events = select(0)
            if not events:
                if timeout is None:
                    raise AssertionError("deadlock: every task waits and no timer is due")
                self._now += timeout
            return events

        self._selector.select = jump  # type: ignore[attr-defined]

    def time(self) -> float:
        return self._now


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    loop = VirtualClockLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


class Script:
    """A producer that records how it ended, and the pump's report."""

    def __init__(self) -> None:
        self.started = False
        self.finally_at: float | None = None
        self.ends: list[StreamEnd] = []
        self.errors: list[Exception] = []

    def pump(self, items: AsyncIterator[Any], renderer: Renderer | None = None, **options: Any) -> Pump:
        defaults: dict[str, Any] = {"keepalive": 15.0, "buffer_size": 64 * 1024, "send_timeout": None}

        async def describe(exc: Exception) -> dict[str, Any]:
            self.errors.append(exc)
            return {"error": {"message": str(exc)}}

        async def on_end(end: StreamEnd) -> None:
            assert self.finally_at is not None or not self.started, (
                "the end was reported before produce()'s finally ran"
            )
            self.ends.append(end)

        return Pump(
            items,  # type: ignore[arg-type]
            renderer or SSERenderer(dumps),
            describe_error=describe,
            on_end=on_end,
            **{**defaults, **options},
        )

    async def produce(self, *steps: Any) -> AsyncIterator[Any]:
        """Yields each step; a number is a pause of that many seconds, an exception is raised."""
        self.started = True
        try:
            for step in steps:
                if isinstance(step, (int, float)) and not isinstance(step, bool):
                    await asyncio.sleep(step)
                elif isinstance(step, BaseException):
                    raise step
                else:
                    yield step
        finally:
            self.finally_at = asyncio.get_running_loop().time()


async def read_body(pump: Pump, *, direct: bool, stall_after: int | None = None) -> list[tuple[float, bytes]]:
    """The body as a server sends it: ``(time, chunk)`` per write, closed as Django's handler closes it.

    ``direct``: the producer may write to the server's ``send`` too, as under ``dualstream.asgi.ASGIHandler``.
    ``stall_after``: after that many writes the client reads nothing more (its send never completes).
    """
    loop = asyncio.get_running_loop()
    writes: list[tuple[float, bytes]] = []

    async def send(message: Mapping[str, Any]) -> None:
        writes.append((loop.time(), message["body"]))
        if stall_after is not None and len(writes) >= stall_after:
            await loop.create_future()  # a client whose socket never drains

    await send_body(pump, send, direct=direct)
    return writes


async def send_body(pump: Pump, send: Send, *, direct: bool) -> None:
    """Send ``pump``'s body to ``send`` as Django's handler does, from this task; ``direct``: the producer writes too."""
    await pump.prime()
    if direct:
        pump.writes_to(send)
    async with aclosing(pump.chunks()) as body:
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


Reader = Callable[..., Coroutine[Any, Any, list[tuple[float, bytes]]]]


@pytest.fixture(params=["response task", "producer task"])
def read(request: pytest.FixtureRequest) -> Reader:
    """``read_body()``, once as Django's handler sends a body, once as dualstream's: every case holds for both."""
    return functools.partial(read_body, direct=request.param == "producer task")


def text(writes: list[tuple[float, bytes]]) -> str:
    return b"".join(chunk for _, chunk in writes).decode()


def test_a_finished_stream_ends_with_done_and_reports_completed(read: Reader) -> None:
    script = Script()

    async def main() -> str:
        return text(await read(script.pump(script.produce({"a": 1}, "b"))))

    assert run(main) == 'data: {"a":1}\n\ndata: b\n\nevent: done\nid: dualstream-completed\ndata: \n\n'
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.COMPLETED, 2)]


def test_keepalives_flow_while_the_producer_is_silent_and_end_no_event_block(read: Reader) -> None:
    script = Script()

    async def main() -> list[tuple[float, bytes]]:
        return await read(script.pump(script.produce("first", 40.0, "second")))

    writes = run(main)
    assert [(round(t), chunk) for t, chunk in writes] == [
        (0, b"data: first\n\n"),
        (15, b": ping\n"),
        (30, b": ping\n"),
        (40, b"data: second\n\n"),
        (40, b"event: done\nid: dualstream-completed\ndata: \n\n"),
    ]


def test_a_slow_first_item_commits_the_headers_after_one_keepalive_interval() -> None:
    script = Script()

    async def main() -> tuple[float, list[tuple[float, bytes]]]:
        pump = script.pump(script.produce(20.0, "late"))
        await pump.prime()
        primed = asyncio.get_running_loop().time()
        async with aclosing(pump.chunks()) as body:
            return primed, [(asyncio.get_running_loop().time(), chunk) async for chunk in body]

    primed, writes = run(main)
    assert primed == pytest.approx(15.0)
    assert [chunk for _, chunk in writes][:2] == [
        b"data: late\n\n",
        b"event: done\nid: dualstream-completed\ndata: \n\n",
    ]


def test_a_client_that_reads_nothing_pauses_the_producer(read: Reader) -> None:
    script = Script()
    produced = 0

    async def items() -> AsyncIterator[str]:
        nonlocal produced
        try:
            for _ in range(1000):
                produced += 1
                yield "x" * 1000
        finally:
            script.finally_at = asyncio.get_running_loop().time()

    async def main() -> None:
        pump = script.pump(items(), buffer_size=4096, send_timeout=60.0)
        with pytest.raises(asyncio.CancelledError):
            await read(pump, stall_after=1)

    run(main)
    # One write of what was buffered when the client stopped reading, and one buffer more: then it waits.
    assert produced <= 2 * (4096 // 1000 + 1) + 1
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.SEND_TIMEOUT, produced)]
    assert script.finally_at == pytest.approx(60.0, abs=15.0)


def test_an_error_after_the_first_item_is_the_renderers_error_and_no_done(read: Reader) -> None:
    script = Script()
    failure = RuntimeError("boom")

    async def main() -> str:
        return text(await read(script.pump(script.produce({"i": 0}, failure))))

    assert run(main) == 'data: {"i":0}\n\nevent: error\ndata: {"error":{"message":"boom"}}\n\n'
    assert script.errors == [failure]
    assert [(e.reason, e.error) for e in script.ends] == [(EndReason.ERROR, failure)]


def test_an_error_before_the_first_item_is_raised_by_prime() -> None:
    script = Script()

    async def main() -> None:
        with pytest.raises(PermissionError):
            await script.pump(script.produce(1.0, PermissionError("no"))).prime()

    run(main)
    assert script.errors == []  # the view answers it as an HTTP error: nothing was written
    assert [e.reason for e in script.ends] == [EndReason.ERROR]


def test_an_item_that_cannot_be_utf8_fails_that_item_not_the_write(read: Reader) -> None:
    script = Script()

    async def main() -> str:
        return text(await read(script.pump(script.produce("ok", "lone \ud800"), NDJSONRenderer(dumps))))

    body = run(main)
    lines = body.splitlines()
    assert json.loads(lines[0]) == "ok"
    assert "surrogates not allowed" in json.loads(lines[1])["error"]["message"]
    assert [e.reason for e in script.ends] == [EndReason.ERROR]


def test_an_item_that_cannot_be_utf8_ends_a_producer_that_is_still_running(read: Reader) -> None:
    script = Script()

    async def main() -> list[tuple[float, bytes]]:
        # The bad item is written at t=0 while produce() waits to yield the next one: the write finds it.
        return await read(script.pump(script.produce("ok", "lone \ud800", 5.0, "never"), NDJSONRenderer(dumps)))

    writes = run(main)
    lines = b"".join(chunk for _, chunk in writes).decode().splitlines()
    assert json.loads(lines[0]) == "ok"
    assert "surrogates not allowed" in json.loads(lines[1])["error"]["message"]
    assert len(lines) == 2
    assert script.finally_at == 0.0  # cancelled at once, not after its pause
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.ERROR, 1)]


def test_a_client_that_leaves_while_prime_waits_closes_the_producer_first() -> None:
    script = Script()

    async def main() -> float:
        pump = script.pump(script.produce(100.0, "never"), keepalive=None)  # prime() waits for the item
        waiting = asyncio.ensure_future(pump.prime())
        await asyncio.sleep(1.0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return asyncio.get_running_loop().time()

    cancelled_at = run(main)
    assert script.finally_at == cancelled_at == pytest.approx(1.0)
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.CLIENT_GONE, 0)]


def test_a_client_that_leaves_mid_stream_closes_the_producer_at_once(read: Reader) -> None:
    script = Script()

    async def main() -> tuple[float, list[asyncio.Task[Any]]]:
        pump = script.pump(script.produce("a", 100.0, "b"))
        reading = asyncio.ensure_future(read(pump))
        await asyncio.sleep(5.0)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        return asyncio.get_running_loop().time(), [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    cancelled_at, left = run(main)
    assert script.finally_at == cancelled_at == pytest.approx(5.0)
    assert left == []
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.CLIENT_GONE, 1)]


@pytest.mark.parametrize(
    ("renderer", "tail"),
    [
        (SSERenderer(dumps), "retry: 1000\n"),
        (
            NDJSONRenderer(dumps),
            '{"error":{"status":503,"message":"The server ended the stream: retry.","retry":1000}}\n',
        ),
        (JSONArrayRenderer(dumps), ""),
    ],
)
def test_max_duration_cuts_the_stream_without_its_end(renderer: Renderer, tail: str, read: Reader) -> None:
    script = Script()

    async def main() -> str:
        return text(await read(script.pump(script.produce("a", 1000.0, "b"), renderer, max_duration=30.0)))

    body = run(main)
    assert body.endswith(tail) and "done" not in body and not body.endswith("]}")
    assert script.finally_at == pytest.approx(30.0)
    assert [e.reason for e in script.ends] == [EndReason.MAX_DURATION]


def test_shutdown_cuts_an_open_stream_with_a_retry_hint(read: Reader) -> None:
    script = Script()

    async def main() -> str:
        pump = script.pump(script.produce("a", 1000.0, "b"))
        reading = asyncio.ensure_future(read(pump))
        await asyncio.sleep(3.0)
        pump.end(EndReason.SHUTDOWN)
        return text(await reading)

    assert run(main) == "data: a\n\nretry: 1000\n"
    assert [e.reason for e in script.ends] == [EndReason.SHUTDOWN]


def test_an_interrupt_before_the_producers_first_step_still_ends_and_reports_the_stream(read: Reader) -> None:
    # The race of issue 26: end_streams() (from another thread) lands after the producer task is created,
    # before its first step. Cancelling that task kept its coroutine from ever starting: no finally, no
    # report, and chunks() waited forever (here: a deadlock, as keep-alives are off).
    script = Script()

    async def main() -> tuple[str, list[asyncio.Task[Any]]]:
        pump = script.pump(script.produce("a", 1000.0, "b"), keepalive=None)
        asyncio.get_running_loop().call_soon(pump.end, EndReason.SHUTDOWN)
        body = text(await read(pump))
        return body, [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    body, left = run(main)
    assert body == "retry: 1000\n"  # the cut, and nothing of a produce() that never ran
    assert not script.started and left == []
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.SHUTDOWN, 0)]


def test_every_way_of_ending_at_once_reports_one_end_the_first_one(read: Reader) -> None:
    # Shutdown from another thread, the client's close, a HEAD-style aclose, the reader cancelled and
    # both limits due, all within one turn: one end, one finally, the first reason.
    script = Script()

    async def main() -> list[asyncio.Task[Any]]:
        pump = script.pump(script.produce("a", 1000.0), max_duration=2.0, send_timeout=1.0)
        reading = asyncio.ensure_future(read(pump, stall_after=1))
        await asyncio.sleep(0.5)  # the reader is stuck in its first write: the send timeout is due at 1.0
        other = threading.Thread(target=pump.end, args=(EndReason.SHUTDOWN,))
        other.start()
        other.join()
        pump.end(EndReason.CLIENT_GONE)  # on the loop: decided at once, before the shutdown's call runs
        reading.cancel()
        await pump.aclose(EndReason.HEAD)
        await asyncio.sleep(5.0)  # past both limits
        with pytest.raises(asyncio.CancelledError):
            await reading
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert run(main) == []
    assert script.finally_at == pytest.approx(0.5)
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.CLIENT_GONE, 1)]
    assert isinstance(script.ends[0].reason, str) and script.ends[0].reason == "client_gone"


def test_a_producer_cancelled_by_anyone_else_is_not_reported_completed() -> None:
    # The loop's teardown cancels every task, the producer's among them: that is no normal end.
    script = Script()

    async def main() -> None:
        pump = script.pump(script.produce("a", 1000.0, "b"))
        await pump.prime()
        assert pump._task is not None
        pump._task.cancel()
        await asyncio.wait([pump._task])

    run(main)
    assert script.finally_at == 0.0
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.CLIENT_GONE, 1)]


def test_the_task_that_closes_the_response_it_stopped_reading_is_not_cancelled() -> None:
    # A test client breaks out of the body, then closes the response (StreamResponse.close() -> Pump.end()):
    # the pump took the caller, whose last read left it "away", for a consumer stuck in a write.
    script = Script()

    async def main() -> str:
        pump = script.pump(script.produce("a", 1000.0, "b"), send_timeout=5.0)
        await pump.prime()
        body = pump.chunks()
        first = await anext(body)
        pump.end(EndReason.CLIENT_GONE)
        await asyncio.sleep(10.0)  # the caller goes on awaiting, past the send timeout: not cancelled
        await body.aclose()  # what its finalizer would do, later
        return first.decode()

    assert run(main) == "data: a\n\n"
    assert script.finally_at == 0.0
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.CLIENT_GONE, 1)]


def test_reconnect_raised_by_the_producer_cuts_with_its_retry(read: Reader) -> None:
    script = Script()

    async def main() -> str:
        return text(await read(script.pump(script.produce(Event("a", id="1"), Reconnect(retry=250)))))

    assert run(main) == "id: 1\ndata: a\n\nretry: 250\n"
    assert [e.reason for e in script.ends] == [EndReason.RECONNECT]


def test_the_streamed_batch_document_is_get_batch_documents(read: Reader) -> None:
    script = Script()

    def document(items: list[Any]) -> Any:
        return {"count": None, "results": items, "next": None}

    async def main() -> str:
        renderer = JSONArrayRenderer(dumps, document)
        return text(await read(script.pump(script.produce([1], Event({"a": 2}), "c"), renderer)))

    assert json.loads(run(main)) == {"count": None, "results": [[1], {"a": 2}, "c"], "next": None}


KB = "x" * 1000  # an item of about a kilobyte
KB_EVENT = f"data: {KB}\n\n".encode()  # as the SSE renderer writes it
#: KB items the pump makes when each takes TURN_SECONDS / 10: it reads the clock every 9 (TURN_BYTES), at
#: 0.9 ms, then 1.8 ms, past TURN_SECONDS, and gives a turn.
TURN_ITEMS = 2 * (TURN_BYTES // len(KB_EVENT) + 1)


@pytest.mark.parametrize(
    ("seconds_per_item", "most_items_per_turn"),
    [
        (TURN_SECONDS / 10, TURN_ITEMS),
        # Quick to make: no turn before the 64 KiB buffer is full, so no write smaller than it.
        (0.0, 64 * 1024 // len(KB_EVENT) + 2),
    ],
    ids=["slow-items", "quick-items"],
)
def test_a_producer_that_never_waits_gives_the_loop_a_turn_once_it_has_run_turn_seconds(
    read: Reader, monkeypatch: pytest.MonkeyPatch, seconds_per_item: float, most_items_per_turn: int
) -> None:
    script = Script()
    made = 0
    seen: list[int] = []  # items made, as another task of the loop sees it at each of its turns
    monkeypatch.setattr(pump_module, "monotonic", lambda: made * seconds_per_item)  # the time spent making them

    async def produce() -> AsyncIterator[str]:
        nonlocal made
        for _ in range(256):  # 256 KiB: four times the buffer, and never a wait
            made += 1
            yield KB

    async def other_task() -> None:
        while True:
            seen.append(made)
            await asyncio.sleep(0)

    async def main() -> list[tuple[float, bytes]]:
        other = asyncio.create_task(other_task())
        try:
            return await read(script.pump(produce()))
        finally:
            other.cancel()

    writes = run(main)
    body = b"".join(chunk for _, chunk in writes)
    assert body.count(KB_EVENT) == 256
    per_turn = [b - a for a, b in pairwise(seen)]
    assert most_items_per_turn - 10 < max(per_turn) <= most_items_per_turn
    # A turn given is no write: one per 64 KiB buffer, as when no turn is given; the producer's own writes add
    # one per buffer (the item it makes after waiting for the buffer to drain); then the end.
    assert len(writes) <= 2 * (256 * len(KB_EVENT) // (64 * 1024)) + 3


def test_what_a_producer_made_before_it_gave_a_turn_and_waited_is_written_before_its_wait_ends(
    read: Reader, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = Script()
    made = 0
    monkeypatch.setattr(pump_module, "monotonic", lambda: made * TURN_SECONDS / 10)

    async def produce() -> AsyncIterator[str]:
        nonlocal made
        for _ in range(2 * TURN_ITEMS):
            made += 1
            yield KB
        await asyncio.sleep(1.0)  # right after its second turn: no item comes to wake the consumer
        yield "last"

    async def main() -> list[tuple[float, bytes]]:
        return await read(script.pump(produce()))

    writes = run(main)
    before_the_wait = b"".join(chunk for at, chunk in writes if at < 1.0)
    assert before_the_wait.count(KB_EVENT) == 2 * TURN_ITEMS


def test_a_document_that_does_not_hold_the_items_list_cannot_be_streamed() -> None:
    script = Script()

    async def main() -> None:
        renderer = JSONArrayRenderer(dumps, lambda items: {"n": len(items)})
        with pytest.raises(TypeError, match="get_batch_document"):
            await script.pump(script.produce("a"), renderer).prime()

    run(main)


# The producer's own writes (writes_to()): who sends what. -----------------------------------------


class Server:
    """A server's ``send`` that records each body message with the task that sent it; it may refuse some."""

    def __init__(self, refuse: Callable[[bytes], bool] = lambda body: False) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.response: asyncio.Task[Any] | None = None
        self._refuse = refuse

    async def send(self, message: Mapping[str, Any]) -> None:
        body = message["body"]
        if self._refuse(body):
            raise OSError("connection reset")
        self.sent.append(("response" if asyncio.current_task() is self.response else "producer", body))

    async def serve(self, pump: Pump) -> None:
        """Send ``pump``'s body as dualstream's handler does: this task, the response's, iterates it; the producer writes too."""
        self.response = asyncio.current_task()
        await send_body(pump, self.send, direct=True)


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_a_task_reads_another_turn_once_it_has_waited_and_not_before(new_loop: Callable[[], Any]) -> None:
    async def task(waits: Callable[[], Awaitable[object]]) -> tuple[int, int, int]:
        turns = turns_of(asyncio.get_running_loop())
        first = turns.now()
        again = turns.now()
        await waits()
        return first, again, turns.now()

    async def main() -> list[tuple[int, int, int]]:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.call_later(0.01, ready.set_result, None)
        waits: list[Callable[[], Awaitable[object]]] = [
            lambda: asyncio.sleep(0),
            lambda: ready,
            lambda: asyncio.sleep(0.02),
        ]
        return await asyncio.gather(*(task(wait) for wait in waits))

    loop = new_loop()
    try:
        seen = loop.run_until_complete(main())
    finally:
        loop.close()
    for first, again, after in seen:
        assert first == again != after


def test_an_item_made_after_a_wait_is_written_by_the_producer_while_the_response_waits() -> None:
    script = Script()
    server = Server()

    async def main() -> None:
        await server.serve(script.pump(script.produce("a", 1.0, "b", 1.0, "c")))

    run(main)
    assert server.sent == [
        ("response", b"data: a\n\n"),  # made before the response started: prime() waited for it
        ("producer", b"data: b\n\n"),
        ("producer", b"data: c\n\n"),
        ("response", b"event: done\nid: dualstream-completed\ndata: \n\n"),
    ]
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.COMPLETED, 3)]


def test_items_made_in_one_go_after_a_wait_are_one_write_after_the_first() -> None:
    script = Script()
    server = Server()

    async def main() -> None:
        await server.serve(script.pump(script.produce("a", 1.0, *(str(i) for i in range(100)))))

    run(main)
    writers = [writer for writer, _ in server.sent]
    assert writers == ["response", "producer", "response", "response"]
    assert server.sent[1][1] == b"data: 0\n\n"
    assert server.sent[2][1] == b"".join(f"data: {i}\n\n".encode() for i in range(1, 100))


def test_a_write_the_server_refuses_ends_the_stream_as_the_clients_leaving() -> None:
    script = Script()
    server = Server(refuse=lambda body: body == b"data: b\n\n")

    async def main() -> None:
        await server.serve(script.pump(script.produce("a", 1.0, "b", 1.0, "c")))

    run(main)
    assert script.finally_at == 1.0  # closed at the refusal, from its own task
    assert script.errors == []  # no "Error while streaming": nothing failed but the connection
    assert [(e.reason, e.items) for e in script.ends] == [(EndReason.CLIENT_GONE, 2)]


# The deadlines alone: one timer for keep-alive, send timeout and maximum duration. ---------------


class Clock:
    """A ``Deadlines`` on the virtual clock, and what it called when."""

    def __init__(self, **options: float | None) -> None:
        self.calls: list[tuple[float, str]] = []
        self.loop = asyncio.get_running_loop()
        settings = {"keepalive": None, "send_timeout": None, "max_duration": None, **options}
        self.deadlines = Deadlines(
            self.loop,
            on_keepalive=lambda: self.calls.append((self.loop.time(), "keepalive")),
            on_limit=lambda reason: self.calls.append((self.loop.time(), reason)),
            **settings,
        )

    def write(self) -> None:
        """The consumer writes, and the write goes through at once."""
        self.deadlines.last_write = self.deadlines.writing_since = self.loop.time()
        self.deadlines.writing_since = None

    def rounded(self) -> list[tuple[float, str]]:
        return [(round(t, 2), what) for t, what in self.calls]


def test_keepalives_are_due_after_each_silent_interval_once_sending() -> None:
    async def main() -> list[tuple[float, str]]:
        clock = Clock(keepalive=15.0)
        clock.deadlines.start()
        await asyncio.sleep(20.0)  # not sending yet: nothing is due
        clock.deadlines.start_sending()  # at 20
        await asyncio.sleep(20.0)  # 35: the first keep-alive
        clock.write()  # at 40, the consumer writes it
        await asyncio.sleep(16.0)  # 55: due again 15 s after that write
        clock.deadlines.stop()
        await asyncio.sleep(100.0)
        return clock.rounded()

    assert run(main) == [(35.0, "keepalive"), (55.0, "keepalive")]


def test_a_write_stuck_for_the_send_timeout_is_seen_within_a_quarter_more() -> None:
    async def main() -> list[tuple[float, str]]:
        clock = Clock(send_timeout=20.0)
        clock.deadlines.start()
        clock.deadlines.start_sending()
        await asyncio.sleep(30.0)
        clock.write()  # quick writes: nothing is due, however long the stream
        await asyncio.sleep(2.0)
        clock.deadlines.writing_since = clock.loop.time()  # a write that never completes, from 32
        await asyncio.sleep(100.0)
        return clock.rounded()

    ((at, what),) = run(main)
    assert what == EndReason.SEND_TIMEOUT
    assert 52.0 <= at <= 32.0 + 1.25 * 20.0


def test_max_duration_is_due_on_time_whatever_the_writes() -> None:
    async def main() -> list[tuple[float, str]]:
        clock = Clock(keepalive=15.0, send_timeout=60.0, max_duration=30.0)
        clock.deadlines.start()
        await asyncio.sleep(7.0)
        clock.deadlines.start_sending()
        clock.deadlines.writing_since = clock.loop.time()  # stuck, but not for the send timeout
        await asyncio.sleep(100.0)
        return clock.rounded()

    assert run(main) == [(30.0, EndReason.MAX_DURATION)]


def test_stopped_deadlines_call_nothing_and_arm_nothing() -> None:
    async def main() -> list[tuple[float, str]]:
        clock = Clock(keepalive=1.0, send_timeout=1.0, max_duration=1.0)
        clock.deadlines.start()
        clock.deadlines.stop()
        clock.deadlines.start_sending()  # a consumer that starts after the end
        clock.deadlines.writing_since = clock.loop.time()
        await asyncio.sleep(10.0)
        return clock.rounded()

    assert run(main) == []


# The pump's cost does not grow with the number of items: no task or future per item. -----------

ITEMS = 20_000  # about 400 KB of events: the 64 KiB buffer fills and drains several times


async def _never_fails(exc: Exception) -> dict[str, Any]:
    raise AssertionError(f"produce() failed: {exc!r}")


async def _stream_counting(items: AsyncIterator[Any], *, direct: bool = False) -> tuple[bytes, int, int]:
    """The whole body of a pump with keep-alives on, and how many tasks and futures the loop made meanwhile.

    ``direct``: the producer may write to the server's ``send`` (``read_body()``).
    """
    loop = asyncio.get_running_loop()
    counts = {"tasks": 0, "futures": 0}
    create_future = loop.create_future

    def counting_future() -> asyncio.Future[Any]:
        counts["futures"] += 1
        return create_future()

    def counting_task(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        counts["tasks"] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.create_future = counting_future  # type: ignore[method-assign]
    loop.set_task_factory(counting_task)  # type: ignore[arg-type]
    try:
        pump = Pump(items, SSERenderer(dumps), keepalive=15.0, buffer_size=64 * 1024, describe_error=_never_fails)  # type: ignore[arg-type]
        body = b"".join([chunk for _, chunk in await read_body(pump, direct=direct)])
    finally:
        loop.set_task_factory(None)
        del loop.create_future  # type: ignore[method-assign]
    return body, counts["tasks"], counts["futures"]


def test_a_long_stream_costs_one_task_and_a_future_per_write_not_per_item(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pump_module, "monotonic", lambda: 0.0)  # items made in no time: no turn given but to write

    async def produce() -> AsyncIterator[dict[str, int]]:
        for i in range(ITEMS):
            yield {"i": i}

    body, tasks, futures = asyncio.run(_stream_counting(produce()))

    assert body.count(b"data: {") == ITEMS
    assert body.endswith(b"event: done\nid: dualstream-completed\ndata: \n\n")
    assert tasks == 1  # the producer
    # Futures only where one side waits for the other: per write of up to 64 KiB, not per item.
    writes = len(body) // (64 * 1024) + 1
    assert futures <= 2 * writes + 2, (futures, writes)


def test_a_paced_producer_costs_one_wait_per_item_and_no_more() -> None:
    async def produce() -> AsyncIterator[dict[str, int]]:
        for i in range(200):
            yield {"i": i}
            await asyncio.sleep(0)  # the consumer catches up and waits for each item

    body, tasks, futures = asyncio.run(_stream_counting(produce()))

    assert body.count(b"data: {") == 200
    assert tasks == 1
    assert futures <= 200 + 2  # the consumer's one waiter per item it waits for: nothing wraps __anext__()


def test_a_paced_producer_that_writes_itself_costs_no_wait_per_item() -> None:
    async def produce() -> AsyncIterator[dict[str, int]]:
        for i in range(200):
            yield {"i": i}
            await asyncio.sleep(0)

    body, tasks, futures = asyncio.run(_stream_counting(produce(), direct=True))

    assert body.count(b"data: {") == 200
    assert tasks == 1
    assert futures <= 3  # prime()'s wait and the response's one wait for the end: none per item
