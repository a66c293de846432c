"""The Django response around a pump, under ASGI and WSGI alike, and the ways it learns it will not be read on."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse

from .pump import EndReason, Pump, Send, running_loop

T = TypeVar("T")


class WSGIBridge:
    """An event loop in a thread of its own: where a WSGI worker runs a pump.

    Under WSGI the loop that runs an async view is closed when the view
    returns, so the pump lives on a loop that outlasts it (``Pump(loop=bridge.loop)``).
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dualstream-wsgi", daemon=True)
        self._thread.start()

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop, from a plain thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Stop the loop once what runs on it has finished (the stream has been ended). Idempotent."""
        if self.loop.is_closed() or threading.current_thread() is self._thread:
            return  # closed from within the body (Django 6's test client does so): the body's end closes it
        self.run_sync(_finish(self.loop))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class StreamResponse(StreamingHttpResponse):
    """A streaming response that always ends its pump's stream.

    Django's ASGI handler closes only its own wrapper around the body, and
    never closes a response whose request task was cancelled before it was
    sent. So the stream is ended (``Pump.end()``, from whichever thread) when
    its body is closed, when the response is closed, when the task that was to
    send it is done (``lifecycle.streams``), and when the response is freed unsent (a
    cancellation inside a middleware): then the pump's own task closes
    ``produce()``, never the garbage collector.

    Given the server's ``send`` (``send_with()``, from ``dualstream.asgi.ASGIHandler``),
    the pump's producer writes to it itself, unless a middleware replaced the body.

    Under WSGI (``runserver``, gunicorn sync workers) Django would consume an
    async body completely before sending anything; given the ``WSGIBridge``
    its pump runs on, ``__iter__`` hands over each chunk as it comes instead.
    """

    def __init__(self, pump: Pump, *, bridge: WSGIBridge | None = None, **kwargs: Any) -> None:
        # First, so that __del__ ends the pump even if this fails. Weak: a collection of a cycle clears weak
        # references before finalizers run, so a pump collected with its response is left alone, not put
        # back in reach by the call end() schedules on its loop.
        self._pump_ref = weakref.ref(pump)
        self._pump = pump
        self._chunks = pump.chunks()
        super().__init__(self._chunks, **kwargs)
        # What __aiter__ hands over, until a middleware replaces the body.
        self._body: AsyncIterator[bytes] | None = self._chunks
        self._bridge = bridge
        self._send: Send | None = None

    def __del__(self) -> None:
        """Freed unclosed: the stream ends, and its pump's own task closes ``produce()``.

        Django 6 frees such a response (cancelled in a middleware) just before it
        sends ``request_finished``: the end is requested at once, so that a
        queryset's cursor closes before that signal closes the connection.
        """
        pump = self._pump_ref()
        if pump is not None:
            pump.end(EndReason.CLIENT_GONE)

    def _set_streaming_content(self, value: Any) -> None:
        super()._set_streaming_content(value)  # type: ignore[misc]  # Django's, not in django-stubs
        self._body = None

    def close(self) -> None:
        # Before Django's own closing, which sends request_finished and so closes database connections.
        try:
            self._end_stream()
        finally:
            super().close()

    def _end_stream(self) -> None:
        """Nobody reads on: the stream ends (``client_gone`` unless it has ended), then the WSGI loop stops.

        Django closes a response in the request's thread, before ``request_finished``
        closes its database connections: that thread waits for ``produce()``'s ``finally``,
        so a queryset's cursor closes first, on that same thread. Under WSGI the bridge
        waits for it as it stops. Async code cannot wait: the pump's task closes ``produce()``.
        """
        pump, bridge = self._pump, self._bridge
        if bridge is None and not pump.done and running_loop() is None:
            async_to_sync(pump.aclose)(EndReason.CLIENT_GONE)
        else:
            pump.end(EndReason.CLIENT_GONE)
        if bridge is not None:
            bridge.close()

    def send_with(self, send: Send) -> None:
        """``send`` is the server's, to which the body is about to be sent."""
        self._send = send

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The pump's chunks themselves, which close the pump when they are closed, as Django's handler
        # closes what it iterates; no wrapper in between, per chunk or across a stream's idle wait.
        if self._body is not None:
            if self._send is not None:  # the headers have been sent: the producer may write the body too
                self._pump.writes_to(self._send)
            return self._body
        return self._replaced_content()

    async def _replaced_content(self) -> AsyncIterator[bytes]:
        """What a middleware put in place of the pump's chunks; the pump is closed after it."""
        try:
            async for chunk in super().__aiter__():
                yield chunk
        finally:
            await self._chunks.aclose()

    def __iter__(self) -> Iterator[bytes]:
        if self._bridge is None:
            raise TypeError("This response was made for an ASGI server; iterate it with 'async for'.")
        return self._iter_wsgi(self._bridge)

    def _iter_wsgi(self, bridge: WSGIBridge) -> Iterator[bytes]:
        source = self.__aiter__()
        try:
            while True:
                try:
                    yield bridge.run_sync(_next(source))
                except StopAsyncIteration:
                    return
        finally:
            self._end_stream()


async def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Wait for every other task of ``loop`` (the producer reporting its end), then close the body's generators,
    first iterated on this loop: here, not in a finalizer."""
    others = asyncio.all_tasks() - {asyncio.current_task()}
    if others:
        await asyncio.wait(others)
    await loop.shutdown_asyncgens()


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)
