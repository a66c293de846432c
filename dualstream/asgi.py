"""Django's ASGI application, with a stream's events written by the task that makes them, and a server's
cancellation of a request reaching the view that answers it.

Django's handler sends a streaming response from the request's task: each
event of a stream takes a step of the producer task, then a step of the
request's. ``ASGIHandler`` gives a dualstream response the server's ``send``, so
that the producer task writes an event itself while nothing else is being
written: half the task steps per event, and none of the objects a waiting
response task holds, which on thousands of open streams keep the garbage
collector busy (docs/performance.md). Everything else is Django's handler.

Servers cancel the application's task for a request they give up on:
uvicorn once ``--timeout-graceful-shutdown`` has passed, hypercorn at
shutdown, a test's event loop. Django's ``ASGIHandler`` runs the view in a
task of its own and does not pass that cancellation on: a streaming view
goes on producing for a client that is gone, until the event loop ends.

``PropagateCancellation`` answers such a cancellation as Django answers a
client that disconnects: the view's task is cancelled, ``produce()``'s
``finally`` runs, the stream's end is reported (``client_gone``) and
``request_finished`` is sent; then the cancellation goes on to the server.

``get_asgi_application()`` (in ``asgi.py``, in place of Django's) is both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import django
from django.core.handlers.asgi import ASGIHandler as DjangoASGIHandler
from django.http.response import HttpResponseBase

from .pump import Send
from .responses import StreamResponse

__all__ = ["ASGIHandler", "PropagateCancellation", "get_asgi_application"]

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Application = Callable[[Scope, Receive, Send], Awaitable[None]]

_DISCONNECT: Message = {"type": "http.disconnect"}


def get_asgi_application() -> PropagateCancellation:
    """Django's ``get_asgi_application()`` with dualstream's handler, whose requests end as a disconnect when the
    server cancels them."""
    django.setup(set_prefix=False)
    return PropagateCancellation(ASGIHandler())


class ASGIHandler(DjangoASGIHandler):
    """Django's ASGI handler; a dualstream stream's producer writes to the server's ``send`` itself."""

    async def send_response(self, response: HttpResponseBase, send: Send) -> None:
        if isinstance(response, StreamResponse):
            response.send_with(send)
        await super().send_response(response, send)


class PropagateCancellation:
    """ASGI middleware: a server that cancels a request is, to the application, a client that disconnected.

    The application runs in a task of its own, shielded from the server's
    cancellation; when it comes, every ``receive()`` of the request, pending
    or later, answers ``http.disconnect``, so Django's handler ends the request
    the way it does for a client that leaves, and every task it made ends
    with it. A second cancellation while that runs cancels the application too.
    """

    def __init__(self, app: Application) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cut = _Cut(receive)
        task = asyncio.ensure_future(self.app(scope, cut.receive, send))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cut.disconnect()
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                task.cancel()
                raise
            if not task.cancelled():
                task.exception()  # retrieved: the server is told of the cancellation, not of what followed it
            raise


class _Cut:
    """A request's ``receive``, which answers ``http.disconnect`` from the moment ``disconnect()`` is called."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._disconnected = False
        self._waiting: set[asyncio.Task[Any]] = set()

    async def receive(self) -> Message:
        if self._disconnected:
            return dict(_DISCONNECT)
        task = asyncio.current_task()
        assert task is not None
        self._waiting.add(task)
        try:
            return await self._receive()
        except asyncio.CancelledError:
            # Cancelled by disconnect() alone (not also by the application): answered as a disconnect.
            if self._disconnected and task.uncancel() == 0:
                return dict(_DISCONNECT)
            raise
        finally:
            self._waiting.discard(task)

    def disconnect(self) -> None:
        self._disconnected = True
        for task in self._waiting:
            task.cancel()
