"""The pump: runs ``produce()`` and turns its items into response bytes.

``produce()`` runs in one task per response, writing rendered text into a
small buffer; the response iterator takes everything buffered at once. So:

* a slow client fills the buffer and pauses ``produce()`` (backpressure, flat memory);
* a fast producer has its items coalesced into one write per turn of the
  event loop, while a lone item is written at once;
* heartbeats come from one timer per stream, not from a timeout per item,
  and ``produce()`` is never awaited from two places, so closing it cannot
  hit "aclose(): asynchronous generator is already running".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import aclosing
from typing import Any, TypeVar

from django.http import StreamingHttpResponse

from .renderers import Renderer
from .threads import release_request_thread

T = TypeVar("T")


class Pump:
    """Moves items from ``produce()`` to the response: one producer task, one consumer."""

    def __init__(
        self,
        items: AsyncGenerator[Any, None],
        renderer: Renderer,
        *,
        heartbeat: float | None,
        buffer_size: int,
        on_error: Callable[[Exception], Awaitable[str | None]],
        release_thread: bool = False,
    ) -> None:
        self._items = items
        self._renderer = renderer
        self._heartbeat = heartbeat if renderer.heartbeat else None
        self._limit = buffer_size
        self._on_error = on_error
        start = renderer.start()
        self._buffer: list[str] = [start] if start else []
        self._size = len(start)
        self._has_items = False
        self._finished = False
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The consumer's waiter while it waits (None once woken); the producer's latest one.
        self._consumer_waiter: asyncio.Future[None] | None = None
        self._producer_waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_write = 0.0
        self._heartbeat_due = False
        # Release the request's thread between two items once the response has started (threads.py).
        self._release_thread = release_thread
        self._started = False

    async def prime(self, timeout: float | None) -> None:
        """Wait until ``produce()`` yields its first item, ends, or ``timeout`` passes.

        An exception raised before the first item is raised here, so that the
        view can still answer with an ordinary HTTP error.
        """
        self._ensure_started()
        if not (self._has_items or self._finished):
            await asyncio.sleep(0)  # the producer's first step: often its first item, and then no timer is needed
        if not (self._has_items or self._finished):
            loop = self._loop
            assert loop is not None
            waiter = self._output_waiter()
            timer = loop.call_later(timeout, self._wake, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
        if self._error is not None and not self._has_items:
            raise self._error

    async def chunks(self) -> AsyncIterator[bytes]:
        """The response body. Closing it, at any point, cancels ``produce()`` and waits for its ``finally``."""
        self._ensure_started()
        self._started = True
        loop = self._loop
        assert loop is not None
        self._last_write = loop.time()
        if self._heartbeat is not None:
            self._timer = loop.call_at(self._last_write + self._heartbeat, self._on_timer)
        try:
            while True:
                if self._buffer:
                    text = "".join(self._buffer)
                    self._buffer.clear()
                    self._size = 0
                    self._wake(self._producer_waiter)
                    self._last_write = loop.time()
                    self._heartbeat_due = False
                    yield text.encode()
                elif self._finished:
                    break
                elif self._heartbeat_due:
                    self._heartbeat_due = False
                    self._last_write = loop.time()
                    yield self._renderer.heartbeat  # type: ignore[misc]
                else:
                    await self._output_waiter()
            tail = self._renderer.end() if self._error is None else await self._on_error(self._error)
            if tail:
                yield tail.encode()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop ``produce()`` now and wait until its ``finally`` has run."""
        if self._timer is not None:
            self._timer.cancel()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    def cancel(self) -> None:
        """``aclose()`` for callers that cannot await: schedules the cancellation on the pump's loop."""
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not task.done() and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    def _ensure_started(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._produce())

    async def _produce(self) -> None:
        # The loop runs once per item, so what it needs is held in locals, and the consumer is
        # woken only when it waits: a fast producer's rows pay for a few local operations each.
        render = self._renderer.item
        append = self._buffer.append  # the consumer clears the list in place, never replaces it
        limit = self._limit
        release_thread = self._release_thread
        try:
            async with aclosing(self._items) as items:
                async for item in items:
                    text = render(item)
                    # Not kept until the next item: on a slow stream it would age into the GC's
                    # oldest generation, and thousands of streams would make full collections frequent.
                    del item
                    append(text)
                    self._size += len(text)
                    self._has_items = True
                    if self._consumer_waiter is not None:
                        self._wake_consumer()
                    if self._size >= limit:
                        self._producer_waiter = self._loop.create_future()  # type: ignore[union-attr]
                        await self._producer_waiter
                    if release_thread and self._started:
                        release_thread = False
                        await release_request_thread()
        except Exception as exc:  # reported to the client by the consumer; CancelledError propagates
            self._error = exc
        finally:
            self._finished = True
            self._wake_consumer()

    def _output_waiter(self) -> asyncio.Future[None]:
        """A future the producer or the timer completes when there is something to write.

        Awaited directly, not from a helper coroutine: whatever a stream keeps
        across its wait is new for every event, and on thousands of slow streams
        each such object ends up in the collector's oldest generation.
        """
        waiter = self._consumer_waiter = self._loop.create_future()  # type: ignore[union-attr]
        return waiter

    def _on_timer(self) -> None:
        assert self._loop is not None and self._heartbeat is not None
        now = self._loop.time()
        due = self._last_write + self._heartbeat
        if now >= due - 0.01:  # a timer may fire a hair early
            self._heartbeat_due = True
            self._wake_consumer()
            due = now + self._heartbeat
        self._timer = self._loop.call_at(due, self._on_timer)

    def _wake_consumer(self) -> None:
        """Complete the consumer's waiter if it waits, and unset it: the producer checks one attribute per item."""
        waiter, self._consumer_waiter = self._consumer_waiter, None
        self._wake(waiter)

    @staticmethod
    def _wake(waiter: asyncio.Future[None] | None) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class BackgroundLoop:
    """An event loop in a thread of its own: how a WSGI worker runs a pump.

    Under WSGI the loop that runs an async view is closed when the view
    returns, so the pump must live on a loop that outlasts it.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dualstream-wsgi", daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on this loop, from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop, from a plain thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    @property
    def is_current(self) -> bool:
        """Whether the caller runs on this loop's thread (where waiting for the loop would deadlock)."""
        return threading.current_thread() is self._thread

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()


class StreamResponse(StreamingHttpResponse):
    """A streaming response that always closes its pump, under ASGI and WSGI alike.

    Django's ASGI handler closes only its own wrapper around the body: if the
    client leaves while a chunk is being sent, the iterators below it would be
    left to the garbage collector. This response closes the pump itself.
    Under WSGI (``runserver``, gunicorn sync workers) Django would consume an
    async body completely before sending anything; given the ``BackgroundLoop``
    its pump runs on, ``__iter__`` hands over each chunk as it comes instead.
    """

    def __init__(self, pump: Pump, *, wsgi_loop: BackgroundLoop | None = None, **kwargs: Any) -> None:
        self._chunks = pump.chunks()
        super().__init__(self._chunks, **kwargs)
        self._pump = pump
        self._wsgi_loop = wsgi_loop
        self._resource_closers.append(self._close_wsgi_loop if wsgi_loop else pump.cancel)

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The pump's chunks themselves, which close the pump when they are closed, as Django's handler
        # closes what it iterates; no wrapper in between, per chunk or across a stream's idle wait.
        if self._iterator is self._chunks:
            return self._chunks
        return self._replaced_content()

    async def _replaced_content(self) -> AsyncIterator[bytes]:
        """What a middleware put in place of the pump's chunks; the pump is closed after it."""
        try:
            async for chunk in super().__aiter__():
                yield chunk
        finally:
            await self._chunks.aclose()  # type: ignore[attr-defined]

    def __iter__(self) -> Iterator[bytes]:
        if self._wsgi_loop is None:
            raise TypeError("This response was made for an ASGI server; iterate it with 'async for'.")
        body = self._iter_wsgi(self._wsgi_loop)
        # A WSGI server closes the response, not the iterator it got from it.
        self._resource_closers.insert(0, body.close)
        return body

    def _iter_wsgi(self, loop: BackgroundLoop) -> Iterator[bytes]:
        source = self.__aiter__()
        try:
            while True:
                try:
                    yield loop.run_sync(_next(source))
                except StopAsyncIteration:
                    return
        finally:
            loop.run_sync(source.aclose())  # type: ignore[attr-defined]
            loop.close()

    def _close_wsgi_loop(self) -> None:
        assert self._wsgi_loop is not None
        # Closed from within the body (Django's test client does so): _iter_wsgi finishes the job.
        if not (self._wsgi_loop.is_current or self._wsgi_loop.loop.is_closed()):
            self._wsgi_loop.run_sync(self._pump.aclose())
            self._wsgi_loop.close()


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)
