"""The Django response around a pump, under ASGI and WSGI alike."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from django.http import StreamingHttpResponse

from .pump import CLIENT_GONE, Pump

T = TypeVar("T")


class WSGIBridge:
    """An event loop in a thread of its own: how a WSGI worker runs a pump.

    Under WSGI the loop that runs an async view is closed when the view
    returns, so the pump lives on a loop that outlasts it. ``close()`` is the
    one place the pump and the loop are stopped.
    """

    def __init__(self, pump: Pump) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="dualstream-wsgi", daemon=True)
        self._thread.start()
        self._pump = pump

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` on this loop, from another loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop, from a plain thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        """Close the pump (``produce()``'s ``finally`` runs on this loop), then stop the loop. Idempotent."""
        if self.loop.is_closed() or threading.current_thread() is self._thread:
            return  # closed from within the body (Django 6's test client does so): the body's end closes it
        self.run_sync(self._pump.aclose(CLIENT_GONE))
        # The body's generators were first iterated on this loop: close them here, not in a finalizer.
        self.run_sync(self.loop.shutdown_asyncgens())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class StreamResponse(StreamingHttpResponse):
    """A streaming response that always closes its pump.

    Django's ASGI handler closes only its own wrapper around the body, and
    never closes a response whose request task was cancelled before it was
    sent. So the pump is closed when its body is closed, when the response is
    closed unsent, and when the response is dropped unsent (a cancellation
    inside a middleware): then the pump's own task closes ``produce()``, never
    the garbage collector.

    Under WSGI (``runserver``, gunicorn sync workers) Django would consume an
    async body completely before sending anything; given the ``WSGIBridge``
    its pump runs on, ``__iter__`` hands over each chunk as it comes instead.
    """

    def __init__(self, pump: Pump, *, wsgi: WSGIBridge | None = None, **kwargs: Any) -> None:
        self._chunks = pump.chunks()
        super().__init__(self._chunks, **kwargs)
        # What __aiter__ hands over, until a middleware replaces the body.
        self._body: AsyncIterator[bytes] | None = self._chunks
        self._pump = pump
        self._wsgi = wsgi
        if wsgi is None:
            # A weak reference: the finalizer's arguments live as long as the response, and anything they
            # reach must not lead back to it (the task that sends it holds it as its result). The pump
            # stays alive until it ends: lifecycle.streams holds it.
            weakref.finalize(self, _dropped, weakref.ref(pump))

    def _set_streaming_content(self, value: Any) -> None:
        super()._set_streaming_content(value)  # type: ignore[misc]  # Django's, not in django-stubs
        self._body = None

    def close(self) -> None:
        # Before Django's own closing, which sends request_finished and so closes database connections.
        try:
            if self._wsgi is not None:
                self._wsgi.close()
            else:
                _close_unsent(self._pump)
        finally:
            super().close()

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The pump's chunks themselves, which close the pump when they are closed, as Django's handler
        # closes what it iterates; no wrapper in between, per chunk or across a stream's idle wait.
        if self._body is not None:
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
        if self._wsgi is None:
            raise TypeError("This response was made for an ASGI server; iterate it with 'async for'.")
        return self._iter_wsgi(self._wsgi)

    def _iter_wsgi(self, bridge: WSGIBridge) -> Iterator[bytes]:
        source = self.__aiter__()
        try:
            while True:
                try:
                    yield bridge.run_sync(_next(source))
                except StopAsyncIteration:
                    return
        finally:
            bridge.close()


def _close_unsent(pump: Pump) -> None:
    """``close()`` of a response never iterated (the client left first): close the pump, from Django's thread.

    Django calls ``close()`` in the request's thread before ``request_finished``
    closes its database connections; blocking it until ``produce()`` has ended
    lets a queryset's cursor close first, on that same thread.
    """
    loop = pump.loop
    if pump.done or loop is None or loop.is_closed():
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(pump.aclose)(CLIENT_GONE)
    else:  # closed from async code, which cannot block: the pump's task closes it, and no reader is waited for
        pump.release()


def _dropped(pump_ref: weakref.ref[Pump]) -> None:
    """A response freed unsent and unclosed: its pump's own task closes ``produce()``.

    Django 6 frees such a response (cancelled in a middleware) just before it
    sends ``request_finished``: the cancellation is requested at once, so that
    a queryset's cursor closes before that signal closes the connection.
    """
    pump = pump_ref()
    loop = pump.loop if pump is not None else None
    if pump is None or pump.done or loop is None or loop.is_closed():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        pump.interrupt(CLIENT_GONE)  # cancels the producer task: its finally runs there, not here
    else:
        loop.call_soon_threadsafe(pump.interrupt, CLIENT_GONE)


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)
