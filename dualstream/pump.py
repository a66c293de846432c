"""The pump: runs ``produce()`` in a task of its own and turns its items into response bytes.

Pure asyncio, no Django. ``produce()`` runs in one task per response,
writing each rendered item into a small buffer; the response iterator takes
everything buffered at once. So:

* a slow client fills the buffer and pauses ``produce()`` (backpressure, flat memory);
* a fast producer has its items coalesced into one write per turn of the
  event loop, while a lone item is written at once;
* a producer that never waits (an export to a client that reads as fast as
  it can) gives the loop a turn once it has run ``TURN_SECONDS``: every other
  request waits behind a millisecond of it per turn, not behind a whole buffer,
  and its writes are as large as before;
* given the server's ``send`` (``writes_to()``), the producer task writes a lone
  item itself while the consumer waits: one task step per event, not two, and
  nothing made per event for the consumer's wait (each such object, on
  thousands of streams, is promoted by the collector); items made in one go,
  and whatever comes while a write is out, still go through the consumer;
* keep-alives, the send timeout and the maximum duration share one timer per
  stream (``Deadlines``), and ``produce()`` is never awaited from two places, so
  closing it cannot hit "aclose(): asynchronous generator is already running";
* whoever ends the stream (its end, an error, the client, a limit, the
  server's shutdown), from whichever thread, ends it through ``Pump.end()``:
  ``_end()``, on the pump's loop, is the one place an end is decided; the
  producer task reports it once, after ``produce()``'s ``finally`` has run;
* ``on_started`` runs in the producer task at its first *quiet point* once the
  response is sending: after an item (``produce()`` is suspended at ``yield``), or
  while it waits in ``parked()``, a library's wait that runs no code of ``produce()``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from time import monotonic
from typing import Any

from .events import Reconnect
from .renderers import Renderer
from .turns import Turns, turns_of

#: An ASGI server's ``send``.
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class EndReason(StrEnum):
    """Why a stream ended: the ``reason`` of ``StreamEnd`` and of the ``stream_finished`` signal.

    A ``str``: ``reason == "completed"`` holds, and logs show the name.
    """

    COMPLETED = "completed"  # produce() returned; the renderer's end was sent
    ERROR = "error"  # produce() raised; before the first item that is an HTTP error, after it the renderer's error
    CLIENT_GONE = "client_gone"  # the client left, or the server dropped the request, before the end
    SEND_TIMEOUT = "send_timeout"  # the client read nothing for send_timeout seconds and was dropped
    MAX_DURATION = "max_duration"  # the stream was open for max_duration seconds and was cut
    SHUTDOWN = "shutdown"  # the server is stopping and cut the stream
    RECONNECT = "reconnect"  # produce() raised Reconnect
    HEAD = "head"  # a HEAD request: produce() was primed for the headers, then closed


#: Reasons for which the server cut an unfinished stream and tells the client to come back.
CUTS = frozenset({EndReason.MAX_DURATION, EndReason.SHUTDOWN, EndReason.RECONNECT})
#: Ends the server imposes on a response being sent: a write stuck in a client that reads nothing is abandoned.
IMPOSED = frozenset({EndReason.SEND_TIMEOUT, EndReason.MAX_DURATION, EndReason.SHUTDOWN})
#: Seconds a producer runs without waiting before it gives the loop a turn. A request arriving beside busy
#: exports needs tens of turns of the loop, each as long as every export's step (docs/performance.md, "The
#: soak").
TURN_SECONDS = 0.001
#: Bytes of output between two looks at the clock.
TURN_BYTES = 8 * 1024


class Stage(IntEnum):
    """Where the producer task is; only ever moves forward."""

    NEW = 0  # no producer task yet
    SCHEDULED = 1  # the task exists and has not taken its first step: cancelling it now would skip its finally
    RUNNING = 2  # produce() runs in it
    FINISHED = 3  # produce() has ended and its finally has run; the end is reported


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How one stream ended, reported once, after ``produce()``'s ``finally`` has run."""

    reason: EndReason
    items: int
    duration: float
    error: Exception | None = None


class Deadlines:
    """A stream's three deadlines on one timer: keep-alive, send timeout, maximum duration.

    The consumer marks each write (``last_write``, and ``writing_since`` while it
    is out); the timer is re-armed when it fires, never per write, so a write
    that starts stuck is seen within 1.25 send timeouts. ``on_keepalive`` is
    called after ``keepalive`` seconds without a write, ``on_limit`` once a limit passes.
    """

    __slots__ = (
        "_ends_at",
        "_keepalive",
        "_loop",
        "_max_duration",
        "_on_keepalive",
        "_on_limit",
        "_send_timeout",
        "_stopped",
        "_timer",
        "last_write",
        "sending",
        "writing_since",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        keepalive: float | None,
        send_timeout: float | None,
        max_duration: float | None,
        on_keepalive: Callable[[], None],
        on_limit: Callable[[EndReason], None],
    ) -> None:
        self._loop = loop
        self._keepalive = keepalive
        self._send_timeout = send_timeout
        self._max_duration = max_duration
        self._on_keepalive = on_keepalive
        self._on_limit = on_limit
        self._ends_at: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False
        self.sending = False  # the response has started: keep-alives and the send timeout apply
        self.last_write = 0.0
        self.writing_since: float | None = None

    def start(self) -> None:
        """The stream starts: ``max_duration`` counts from now."""
        if self._max_duration is not None:
            self._ends_at = self._loop.time() + self._max_duration
        self._arm()

    def start_sending(self) -> None:
        """The response starts: keep-alives count from now, and writes may time out."""
        self.sending = True
        self.last_write = self._loop.time()
        self._arm()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        """(Re)schedule the timer for the earliest deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._stopped:
            return
        now = self._loop.time()
        due = [] if self._ends_at is None else [self._ends_at]
        if self.sending:
            since = self.writing_since
            if since is None:
                if self._keepalive is not None:
                    due.append(self.last_write + self._keepalive)
                if self._send_timeout is not None:
                    due.append(now + self._send_timeout / 4)  # to see a write that starts now stuck in time
            else:
                if self._send_timeout is not None:
                    due.append(since + self._send_timeout)
                if self._keepalive is not None:
                    due.append(now + self._keepalive)  # look again once the write is through
        if due:
            self._timer = self._loop.call_at(min(due), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time() + 0.01  # a timer may fire a hair early
        if self._ends_at is not None and now >= self._ends_at:
            self._on_limit(EndReason.MAX_DURATION)
            return
        since = self.writing_since
        if since is not None:
            if self._send_timeout is not None and now >= since + self._send_timeout:
                self._on_limit(EndReason.SEND_TIMEOUT)
                return
        elif self._keepalive is not None and self.sending and now >= self.last_write + self._keepalive:
            self.last_write = self._loop.time()  # the keep-alive's write: the next is due a whole interval on
            self._on_keepalive()
        self._arm()


class _QuietPoint:
    """Where a stream's producer is parked (``parked()``): its headers are due, and its ``on_started`` may run."""

    __slots__ = ("callback", "headers_due", "sending", "waiter")

    def __init__(self, callback: Callable[[], Awaitable[object]] | None, headers_due: Callable[[], None]) -> None:
        self.callback = callback
        self.headers_due: Callable[[], None] | None = headers_due  # the pump's, until it is called
        self.sending = False  # the response has started
        self.waiter: asyncio.Future[Any] | None = None  # the producer's, while it is parked

    def start_sending(self) -> None:
        """The response has started: a producer parked meanwhile is woken to call back."""
        self.sending = True
        _wake(self.waiter)

    async def park(self, waiter: asyncio.Future[Any]) -> None:
        """Await ``waiter``, woken early if the response starts meanwhile; then the quiet point is reached."""
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None
        await self.reached()

    async def reached(self) -> None:
        """The producer task is at a quiet point: call back, once, if the response has started."""
        if self.sending and self.callback is not None:
            callback, self.callback = self.callback, None
            await callback()


#: Each running producer task's quiet point (``parked()``). Not a context variable: setting one in the
#: task adds a context mapping per stream, and tasks that inherit the context are not the producer.
_quiet_points: dict[asyncio.Task[Any], _QuietPoint] = {}


def parked(waiter: asyncio.Future[Any]) -> Awaitable[Any]:
    """What to await for ``waiter`` in ``produce()``'s task, where no code of ``produce()`` runs: a library's long wait.

    A subscription waiting for live events waits here. Its response's headers go at once
    instead of after the first item or a keep-alive interval: whatever could have failed
    up front has been done, and a client of a quiet topic sees the stream open (an
    ``EventSource``'s ``open``) instead of waiting for it. And a stream whose response
    starts meanwhile runs its ``on_started`` from the producer task at once, not only
    after its next item: that wakes ``waiter`` early, the caller finds nothing new and
    waits again. Outside a pump's producer, or once ``on_started`` has run, this is
    ``waiter`` itself: no coroutine kept across the wait (see ``_output_waiter()``).
    """
    quiet = _quiet_points.get(asyncio.current_task())  # type: ignore[arg-type]  # None: no task, no entry
    if quiet is None:
        return waiter
    if quiet.headers_due is not None:
        headers_due, quiet.headers_due = quiet.headers_due, None
        headers_due()
    return waiter if quiet.callback is None else quiet.park(waiter)


class Pump:
    """Moves items from ``produce()`` to the response: one producer task, one consumer."""

    def __init__(
        self,
        items: AsyncGenerator[Any, None],
        renderer: Renderer,
        *,
        keepalive: float | None,
        buffer_size: int,
        describe_error: Callable[[Exception], Awaitable[dict[str, Any]]],
        send_timeout: float | None = None,
        max_duration: float | None = None,
        retry: int = 1000,
        on_started: Callable[[], Awaitable[object]] | None = None,
        on_end: Callable[[StreamEnd], Awaitable[None]] | None = None,
        context: contextvars.Context | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        #: The loop the stream runs on (the caller's unless given): ``end()`` and ``aclose()`` reach it from anywhere.
        self.loop = loop or asyncio.get_running_loop()
        self._items = items
        self._renderer = renderer
        self._commit_after = keepalive  # a slow first item holds the headers back this long at most
        self._keepalive_bytes = (renderer.keepalive or "").encode()
        self._limit = buffer_size
        self._describe_error = describe_error
        self._retry = retry
        self._quiet = _QuietPoint(on_started, self._headers_due)
        self._on_end = on_end
        self._context = context  # the producer task's, if not a copy of the caller's
        self._deadlines = Deadlines(
            self.loop,
            keepalive=keepalive if renderer.keepalive is not None else None,
            send_timeout=send_timeout,
            max_duration=max_duration,
            on_keepalive=self._keepalive_due,
            on_limit=self._end,
        )
        self._began = 0.0
        self._head = ""  # the renderer's start(), written with the first write
        self._buffer: list[str] = []  # rendered items not yet written
        self._size = 0
        # Items written (or being written), counted per write: per item, an int per row (339 instructions).
        self._taken = 0
        self._keepalive_pending = False
        # While the producer only gives the loop a turn: what it has made waits for more (one write, not one per turn).
        self._giving_turn = False
        self._stage = Stage.NEW
        #: Why the stream ended (set once, by ``_end()``); None while it runs.
        self.reason: EndReason | None = None
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[Any] | None = None
        # The consumer's waiter while it waits (None once woken); the producer's latest one.
        self._consumer_waiter: asyncio.Future[None] | None = None
        self._producer_waiter: asyncio.Future[None] | None = None
        # The server's send, once the producer may write to it (writes_to()); the loop's turns; its last write's turn.
        self._send: Send | None = None
        self._turns: Turns | None = None
        self._written_in = -1

    @property
    def done(self) -> bool:
        """Whether ``produce()`` has ended and its end has been reported."""
        return self._task is not None and self._task.done()

    # Ending, from anywhere ---------------------------------------------------------------------

    def end(self, reason: EndReason) -> None:
        """End the stream for ``reason``, from any thread; returns at once. The first reason wins.

        On the pump's loop the producer is cancelled before this returns (a queryset's cursor
        closes before the caller goes on); from another thread, as soon as the loop gets to it.
        """
        loop = self.loop
        if running_loop() is loop:
            self._end(reason)
        elif not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._end, reason)
            except RuntimeError:  # closed meanwhile: its teardown ended the stream
                pass

    async def aclose(self, reason: EndReason = EndReason.CLIENT_GONE) -> None:
        """``end(reason)``, then wait until the end is reported (``produce()``'s ``finally`` has run); from any loop.

        The end is reported even if the caller is cancelled while it waits here.
        """
        loop = self.loop
        if loop.is_closed():
            return
        if running_loop() is not loop:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.aclose(reason), loop))
            return
        self._end(reason)
        task = self._task
        if task is not None and not task.done():
            await asyncio.wait([task])

    def _end(self, reason: EndReason) -> None:
        """The one place a stream's end is decided, on its loop: the first reason wins.

        The producer is cancelled, once (a second cancellation would cut its ``finally``
        short), unless it has not taken its first step: then it sees ``reason`` when it
        does, and closes ``produce()`` unstarted. Where the server imposes the end, a
        consumer stuck in a write to a client that reads nothing is cancelled too (never
        the caller: it is not stuck in a write, it is here).
        """
        if self.reason is not None:
            return
        self.reason = reason
        self._deadlines.stop()
        self._start()  # a pump ended before it started still reports its end, from its producer task
        current = asyncio.current_task()
        task = self._task
        if self._stage is Stage.RUNNING and task is not None and task is not current:
            task.cancel()
        consumer = self._consumer
        if (
            reason in IMPOSED
            and self._deadlines.writing_since is not None
            and consumer is not None
            and consumer is not current
        ):
            consumer.cancel()

    # The response --------------------------------------------------------------------------------

    async def prime(self) -> None:
        """Wait until ``produce()`` yields its first item, ends, parks (``parked()``) or a keep-alive interval passes.

        From any loop. An exception raised before the first item is raised here, so that the
        view can still answer with an ordinary HTTP error. If the caller is
        cancelled meanwhile, ``produce()`` is closed before the cancellation propagates.
        """
        loop = self.loop
        if running_loop() is not loop:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.prime(), loop))
            return
        self._start()
        try:
            if not (self._buffer or self._stage is Stage.FINISHED):
                await asyncio.sleep(0)  # the producer's first step: often its first item, and then no timer
            if not (self._buffer or self._stage is Stage.FINISHED or self._quiet.headers_due is None):
                waiter = self._output_waiter()
                timeout = self._commit_after
                timer = loop.call_later(timeout, _wake, waiter) if timeout is not None else None
                try:
                    await waiter
                finally:
                    self._consumer_waiter = None  # not waiting any more, if the timer woke it
                    if timer is not None:
                        timer.cancel()
        except BaseException:
            await self.aclose(EndReason.CLIENT_GONE)
            raise
        if self._error is not None and not self._buffer:
            raise self._error  # the producer has ended and reported it

    def writes_to(self, send: Send) -> None:
        """Let the producer task write to ``send``, the server's, once the response has started (and its body is ``chunks()``).

        Each body message is then sent either by the producer or by the consumer
        (``chunks()``), never by both at once: the producer writes only while the
        consumer waits for something to write.
        """
        self._turns = turns_of(self.loop)
        self._send = send

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The response body. Closing it, at any point, cancels ``produce()`` and waits for its ``finally``."""
        self._start()
        loop = self.loop
        deadlines = self._deadlines
        self._consumer = asyncio.current_task()
        deadlines.start_sending()
        self._quiet.start_sending()
        try:
            while True:
                if (self._buffer or self._head) and not self._giving_turn:
                    data = self._take_buffer()
                elif self._stage is Stage.FINISHED:
                    break
                elif self._keepalive_pending:
                    data = self._keepalive_bytes
                else:
                    await self._output_waiter()
                    continue
                self._keepalive_pending = False
                deadlines.last_write = deadlines.writing_since = loop.time()
                yield data
                deadlines.writing_since = None
            # Encoded leniently: a failure's message may quote the text that failed to encode.
            tail = (await self._tail()).encode(errors="backslashreplace")
            if tail:
                yield tail
        finally:
            deadlines.writing_since = None
            self._consumer = None  # the task that sends the response holds the response as its result
            await self.aclose(EndReason.CLIENT_GONE)

    def _take_buffer(self) -> bytes:
        """What the producer has buffered, as one write: its text joined and encoded once."""
        buffer = self._buffer
        try:
            data = (self._head + "".join(buffer)).encode()
        except UnicodeEncodeError:
            self._check_utf8()
            data = (self._head + "".join(buffer)).encode()
        self._head = ""
        self._taken += len(buffer)
        buffer.clear()
        self._size = 0
        _wake(self._producer_waiter)
        return data

    def _check_utf8(self) -> None:
        """Fail the stream at the first buffered item UTF-8 cannot carry (a lone surrogate), as if ``produce()`` had raised.

        Checked per write, not per item: the items before it are written, it and those after it are dropped.
        """
        if all(map(str.isascii, self._buffer)):  # O(1) per item: the common case, at every stream's end
            return
        for index, text in enumerate(self._buffer):
            if text.isascii():
                continue
            try:
                text.encode()
            except UnicodeEncodeError as exc:
                del self._buffer[index:]
                if self._error is None:
                    self._error = exc
                self._end(EndReason.ERROR)
                return

    async def _tail(self) -> str:
        """What ends the body, once the producer has finished."""
        if self.reason in CUTS:
            return self._renderer.cut(self._retry)
        if self._error is not None:
            return self._renderer.error(await self._describe_error(self._error))
        return self._renderer.end()

    # The producer --------------------------------------------------------------------------------

    def _start(self) -> None:
        """Create the producer task, once, on the pump's loop."""
        if self._stage is Stage.NEW:
            self._stage = Stage.SCHEDULED
            self._began = self.loop.time()
            self._task = self.loop.create_task(self._produce(), context=self._context)
            self._deadlines.start()

    async def _produce(self) -> None:
        # The loop runs once per item, so what it needs is held in locals, and the consumer is woken only
        # when it waits: 900 fewer instructions per NDJSON row, benchmarks/export_instructions.py.
        render = self._renderer.item
        append = self._buffer.append  # the consumer clears the list in place, never replaces it
        limit = self._limit
        loop = self.loop
        deadlines = self._deadlines
        quiet: _QuietPoint | None = self._quiet  # on_started, if any, runs at the first quiet point once sending
        task = asyncio.current_task()
        assert task is not None
        self._stage = Stage.RUNNING
        # A cancellation nobody asked the pump for (the loop's teardown) is no completion.
        outcome = EndReason.CLIENT_GONE
        _quiet_points[task] = self._quiet  # what parked() finds, in this task only
        try:
            if self.reason is not None:  # ended before this first step (_end): produce() never runs
                await self._items.aclose()
                return
            async with aclosing(self._items) as items:
                self._head = self._renderer.start()
                made = 0  # bytes made since the producer last looked at the clock
                # When the producer last gave a turn or waited for the consumer. Waits inside produce() are not
                # seen: after one, the next turn comes early, at the next look at the clock.
                began = monotonic()
                async for item in items:
                    data = render(item)
                    # Not kept until the next item: on a slow stream it would age into the collector's
                    # oldest generation, and thousands of streams would make full collections frequent.
                    del item
                    append(data)
                    size = len(data)
                    self._size += size
                    made += size
                    if self._consumer_waiter is not None:
                        turns = self._turns
                        if turns is None or turns.count == self._written_in:
                            self._wake_consumer()  # what comes before the producer waits joins this write
                        elif not await self._write():
                            return  # the stream has ended: the write failed, or an item could not be encoded
                    if self._size >= limit:
                        self._producer_waiter = loop.create_future()
                        await self._producer_waiter
                        made, began = 0, monotonic()
                    elif made >= TURN_BYTES:
                        made = 0
                        if monotonic() - began >= TURN_SECONDS:
                            await self._give_turn()
                            began = monotonic()
                    if quiet is not None and deadlines.sending:
                        await quiet.reached()  # a no-op if the producer was parked when the response started
                        quiet = None
            outcome = EndReason.COMPLETED
        except Reconnect as exc:
            outcome = EndReason.RECONNECT
            if exc.retry is not None:
                self._retry = exc.retry
        except Exception as exc:  # reported by the consumer; CancelledError propagates
            self._error = exc
            outcome = EndReason.ERROR
        finally:
            del _quiet_points[task]
            self._stage = Stage.FINISHED
            if outcome is EndReason.COMPLETED:
                self._check_utf8()  # what the consumer has not taken yet: the end reported must be the one sent
            self._end(outcome)
            self._wake_consumer()
            await self._report()

    async def _give_turn(self) -> None:
        """Let the loop's other tasks run once, and the consumer write nothing meanwhile: a turn is no reason to.

        Woken when the producer goes on, the consumer writes at its next turn only if the producer has
        waited meanwhile (its buffer full, or ``produce()`` waiting): the writes stay as large as before.
        """
        self._giving_turn = True
        try:
            await asyncio.sleep(0)
        finally:
            self._giving_turn = False
        if self._buffer and self._consumer_waiter is not None:
            self._wake_consumer()

    async def _write(self) -> bool:
        """The producer's own write of what it has buffered, while the consumer waits; whether the stream goes on.

        A write the server refuses (it raised) ends the stream as the client's leaving: the consumer's
        next write, the stream's end, meets the same refusal and reaches the server as Django's writes do.
        """
        assert self._send is not None and self._turns is not None
        self._written_in = self._turns.now()
        deadlines = self._deadlines
        data = self._take_buffer()
        deadlines.last_write = deadlines.writing_since = self.loop.time()
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
        except Exception:
            self._end(EndReason.CLIENT_GONE)
        finally:
            deadlines.writing_since = None
        return self.reason is None

    def _output_waiter(self) -> asyncio.Future[None]:
        """A future the producer or the timer completes when there is something to write.

        Awaited directly, not from a helper coroutine: whatever a stream keeps
        across its wait is new for every event, and on thousands of slow streams
        each such object ends up in the collector's oldest generation.
        """
        waiter = self._consumer_waiter = self.loop.create_future()
        return waiter

    def _headers_due(self) -> None:
        """The producer is parked before its first item: ``prime()`` need not wait for one."""
        self._wake_consumer()

    def _keepalive_due(self) -> None:
        self._keepalive_pending = True
        self._wake_consumer()

    def _wake_consumer(self) -> None:
        """Complete the consumer's waiter if it waits, and unset it: the producer checks one attribute per item."""
        waiter, self._consumer_waiter = self._consumer_waiter, None
        _wake(waiter)

    async def _report(self) -> None:
        if self._on_end is not None:
            assert self.reason is not None
            items = self._taken + len(self._buffer)
            await self._on_end(StreamEnd(self.reason, items, self.loop.time() - self._began, self._error))


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, or None in plain synchronous code."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
