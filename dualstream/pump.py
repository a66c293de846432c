"""The pump: runs ``produce()`` in a task of its own and turns its items into response bytes.

Pure asyncio, no Django. ``produce()`` runs in one task per response,
writing each rendered item into a small buffer; the response iterator takes
everything buffered at once. So:

* a slow client fills the buffer and pauses ``produce()`` (backpressure, flat memory);
* a fast producer has its items coalesced into one write per turn of the
  event loop, while a lone item is written at once;
* keep-alives, the send timeout and the maximum duration share one timer per
  stream, and ``produce()`` is never awaited from two places, so closing it
  cannot hit "aclose(): asynchronous generator is already running";
* whoever ends the stream (its end, an error, the client, a limit, the
  server's shutdown) ends it through the pump, which cancels the producer
  task and waits for ``produce()``'s ``finally`` before it reports the end.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from .events import Reconnect
from .renderers import Renderer

# Why a stream ended: the ``reason`` of ``StreamEnd``.
COMPLETED = "completed"  # produce() returned; the renderer's end was sent
ERROR = "error"  # produce() raised; before the first item that is an HTTP error, after it the renderer's error
CLIENT_GONE = "client_gone"  # the client left, or the server dropped the request, before the end
SEND_TIMEOUT = "send_timeout"  # the client read nothing for send_timeout seconds and was dropped
MAX_DURATION = "max_duration"  # the stream was open for max_duration seconds and was cut
SHUTDOWN = "shutdown"  # the server is stopping and cut the stream
RECONNECT = "reconnect"  # produce() raised Reconnect
HEAD = "head"  # a HEAD request: produce() was primed for the headers, then closed

#: Reasons for which the server cut an unfinished stream and tells the client to come back.
CUTS = frozenset({MAX_DURATION, SHUTDOWN, RECONNECT})


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """How one stream ended, reported once, after ``produce()``'s ``finally`` has run."""

    reason: str
    items: int
    duration: float
    error: Exception | None = None


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
    ) -> None:
        self._items = items
        self._renderer = renderer
        self._commit_after = keepalive  # a slow first item holds the headers back this long at most
        self._keepalive = keepalive if renderer.keepalive is not None else None
        self._keepalive_bytes = (renderer.keepalive or "").encode()
        self._limit = buffer_size
        self._describe_error = describe_error
        self._send_timeout = send_timeout
        self._max_duration = max_duration
        self._retry = retry
        self._on_started = on_started
        self._on_end = on_end
        self._context = context  # the producer task's, if not a copy of the caller's
        self._head = ""  # the renderer's start(), written with the first write
        self._buffer: list[str] = []  # rendered items not yet written
        self._size = 0
        self._taken = 0  # items written (or being written); counted per write, not per item
        self._finished = False
        self._error: Exception | None = None
        self.reason: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[Any] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # The consumer's waiter while it waits (None once woken); the producer's latest one.
        self._consumer_waiter: asyncio.Future[None] | None = None
        self._producer_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._began = 0.0
        self._last_write = 0.0
        self._away_since: float | None = None  # while the consumer is out sending a write
        self._keepalive_due = False
        self._started = False  # the response has started: the consumer iterates
        self._reported = False
        self._cancelled = False  # the producer has been told to stop
        self._running = False  # the producer task has taken its first step

    @property
    def iterated(self) -> bool:
        """Whether a response iterator has taken this pump over."""
        return self._started

    @property
    def done(self) -> bool:
        """Whether the stream has ended and its end been reported."""
        return self._reported

    async def prime(self) -> None:
        """Wait until ``produce()`` yields its first item, ends, or a keep-alive interval passes.

        An exception raised before the first item is raised here, so that the
        view can still answer with an ordinary HTTP error. If the caller is
        cancelled meanwhile, ``produce()`` is closed before the cancellation propagates.
        """
        self._ensure_started()
        try:
            if not (self._buffer or self._finished):
                await asyncio.sleep(0)  # the producer's first step: often its first item, and then no timer
            if not (self._buffer or self._finished):
                assert self.loop is not None
                waiter = self._output_waiter()
                timeout = self._commit_after
                timer = self.loop.call_later(timeout, _wake, waiter) if timeout is not None else None
                try:
                    await waiter
                finally:
                    if timer is not None:
                        timer.cancel()
        except BaseException:
            await self.aclose(CLIENT_GONE)
            raise
        if self._error is not None and not self._buffer:
            raise self._error  # the producer has ended and reported it

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        """The response body. Closing it, at any point, cancels ``produce()`` and waits for its ``finally``."""
        self._ensure_started()
        loop = self.loop
        assert loop is not None
        self._consumer = asyncio.current_task()
        self._started = True
        self._last_write = loop.time()
        self._arm_timer()
        try:
            while True:
                if self._buffer or self._head:
                    data = self._take_buffer()
                elif self._finished:
                    break
                elif self._keepalive_due:
                    data = self._keepalive_bytes
                else:
                    await self._output_waiter()
                    continue
                self._keepalive_due = False
                self._last_write = self._away_since = loop.time()
                yield data
                self._away_since = None
            # Encoded leniently: a failure's message may quote the text that failed to encode.
            tail = (await self._tail()).encode(errors="backslashreplace")
            if tail:
                yield tail
        finally:
            self._away_since = None
            self._consumer = None  # the task that sends the response holds the response as its result
            await self.aclose(CLIENT_GONE)

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
                if self.reason is None:
                    self.reason = ERROR
                if not self._finished:
                    self._cancel_producer()
                return

    async def _tail(self) -> str:
        """What ends the body, once the producer has finished."""
        if self.reason in CUTS:
            return self._renderer.cut(self._retry)
        if self._error is not None:
            return self._renderer.error(await self._describe_error(self._error))
        return self._renderer.end()

    async def aclose(self, reason: str = CLIENT_GONE) -> None:
        """End the stream for ``reason`` (unless it has one) and wait until ``produce()``'s ``finally`` has run.

        The end is reported once that ``finally`` has run, even if the caller
        is cancelled while it waits here.
        """
        if self.reason is None:
            self.reason = reason
        if self._timer is not None:
            self._timer.cancel()
        task = self._task
        try:
            if task is not None and not task.done():
                self._cancel_producer()
                await asyncio.wait([task])
        finally:
            if task is None:  # never started: no producer to report the end
                await self._report()

    def interrupt(self, reason: str) -> None:
        """Cut the stream for ``reason`` from the pump's loop: the renderer's cut is its last write.

        A consumer stuck in a write to a client that reads nothing is cancelled too: no write can reach it.
        Never the task calling this: it is not stuck in a write, it is here.
        """
        if self.reason is not None:
            return
        self.reason = reason
        self._cancel_producer()
        consumer = self._consumer
        if self._away_since is not None and consumer is not None and consumer is not asyncio.current_task():
            consumer.cancel()

    def release(self) -> None:
        """The response is closed, from the pump's loop: nobody reads on, so end the stream for a gone client.

        Whoever iterated the body has stopped (a test client breaks out of it, then closes the
        response): it is not stuck in a write, and must not be cancelled, now or by a later timeout.
        """
        self._consumer = None
        self._away_since = None
        self.interrupt(CLIENT_GONE)

    def _cancel_producer(self) -> None:
        """Cancel the producer task, once: a second cancellation would cut its ``finally`` short.

        A task that has not taken its first step is not cancelled: its coroutine would never start, so
        its ``finally`` (which reports the end) would never run. It sees ``_cancelled`` when it starts.
        """
        task = self._task
        if task is not None and not task.done() and not self._cancelled:
            self._cancelled = True
            if self._running:
                task.cancel()

    def _ensure_started(self) -> None:
        if self._task is None:
            self.loop = asyncio.get_running_loop()
            self._began = self.loop.time()
            self._task = self.loop.create_task(self._produce(), context=self._context)
            self._arm_timer()

    async def _produce(self) -> None:
        # The loop runs once per item, so what it needs is held in locals, and the consumer is
        # woken only when it waits: a fast producer's rows pay for a few local operations each.
        render = self._renderer.item
        append = self._buffer.append  # the consumer clears the list in place, never replaces it
        limit = self._limit
        loop = asyncio.get_running_loop()
        on_started = self._on_started  # called once, after the first item the response carries
        self._running = True
        returned = False  # produce() returned: only then is the end "completed"
        try:
            if self._cancelled:  # ended before this first step (_cancel_producer): produce() never runs
                await self._items.aclose()
                return
            async with aclosing(self._items) as items:
                self._head = self._renderer.start()
                async for item in items:
                    data = render(item)
                    # Not kept until the next item: on a slow stream it would age into the collector's
                    # oldest generation, and thousands of streams would make full collections frequent.
                    del item
                    append(data)
                    self._size += len(data)
                    if self._consumer_waiter is not None:
                        self._wake_consumer()
                    if self._size >= limit:
                        self._producer_waiter = loop.create_future()
                        await self._producer_waiter
                    if on_started is not None and self._started:
                        callback, on_started = on_started, None
                        await callback()
            returned = True
        except Reconnect as exc:
            self.reason = RECONNECT
            if exc.retry is not None:
                self._retry = exc.retry
        except Exception as exc:  # reported by the consumer; CancelledError propagates
            self._error = exc
        finally:
            self._finished = True
            if self.reason is None and self._error is None:
                self._check_utf8()  # what the consumer has not taken yet: the end reported must be the one sent
            if self.reason is None:
                # A cancellation nobody asked the pump for (the loop's teardown) is no completion.
                self.reason = ERROR if self._error is not None else COMPLETED if returned else CLIENT_GONE
            self._wake_consumer()
            await self._report()

    def _output_waiter(self) -> asyncio.Future[None]:
        """A future the producer or the timer completes when there is something to write.

        Awaited directly, not from a helper coroutine: whatever a stream keeps
        across its wait is new for every event, and on thousands of slow streams
        each such object ends up in the collector's oldest generation.
        """
        assert self.loop is not None
        waiter = self._consumer_waiter = self.loop.create_future()
        return waiter

    def _arm_timer(self) -> None:
        """(Re)schedule the stream's one timer for the earliest of its deadlines."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = self.loop
        assert loop is not None
        deadlines = []
        if self._max_duration is not None:
            deadlines.append(self._began + self._max_duration)
        if self._started:
            if self._away_since is not None:
                if self._send_timeout is not None:
                    deadlines.append(self._away_since + self._send_timeout)
            elif self._keepalive is not None:
                deadlines.append(self._last_write + self._keepalive)
            if self._away_since is not None and self._keepalive is not None:
                deadlines.append(loop.time() + self._keepalive)  # look again once the write is through
            elif self._away_since is None and self._send_timeout is not None:
                # Not re-armed per write: a write that starts now is seen stuck within 1.25 timeouts.
                deadlines.append(loop.time() + self._send_timeout / 4)
        if deadlines:
            self._timer = loop.call_at(min(deadlines), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.reason is not None:
            return
        assert self.loop is not None
        now = self.loop.time() + 0.01  # a timer may fire a hair early
        if self._max_duration is not None and now >= self._began + self._max_duration:
            self.interrupt(MAX_DURATION)
            return
        away = self._away_since
        if away is not None:
            if self._send_timeout is not None and now >= away + self._send_timeout:
                self.interrupt(SEND_TIMEOUT)
                return
        elif self._keepalive is not None and self._started and now >= self._last_write + self._keepalive:
            self._keepalive_due = True
            self._wake_consumer()
        self._arm_timer()

    def _wake_consumer(self) -> None:
        """Complete the consumer's waiter if it waits, and unset it: the producer checks one attribute per item."""
        waiter, self._consumer_waiter = self._consumer_waiter, None
        _wake(waiter)

    async def _report(self) -> None:
        if self._reported:
            return
        self._reported = True
        if self._timer is not None:
            self._timer.cancel()
        if self._on_end is not None:
            duration = self.loop.time() - self._began if self.loop is not None else 0.0
            items = self._taken + len(self._buffer)
            await self._on_end(StreamEnd(self.reason or CLIENT_GONE, items, duration, self._error))


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)
