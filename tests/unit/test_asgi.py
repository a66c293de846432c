"""The ASGI path with a scripted server: cases a real server rarely lines up on demand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import markcoroutinefunction
from asgiref.testing import ApplicationCommunicator
from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponseBase
from django.test import override_settings
from django.urls import path

from dualstream import DualModeView, stream_finished
from dualstream.asgi import get_asgi_application as dualstream_asgi_application
from tests.support.asgi import http_scope
from tests.support.probes import in_this_test, new_probe, tasks_left


class MarksStreamedChunks:
    """Replaces a streaming body with a wrapper around it, as GZipMiddleware does."""

    sync_capable = False
    async_capable = True
    MARK = b": wrapped\n"

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if response.streaming:
            response.streaming_content = self.marked(response.streaming_content)  # type: ignore[attr-defined]
        return response

    async def marked(self, content: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in content:
            yield self.MARK + chunk


class Paced(DualModeView):
    """Three events, each made once the previous write has gone out and a turn of the loop has passed (``written``)."""

    default_mode = "sse"
    written: asyncio.Event  # the test's, set by its send() in the next turn

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for i in range(3):
            if i:
                await self.written.wait()
                self.written.clear()
            yield {"i": i}


urlpatterns = [path("paced/", Paced.as_view())]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("application", "writers"),
    [
        (get_asgi_application, ["response", "response", "response", "response"]),
        (dualstream_asgi_application, ["response", "producer", "producer", "response"]),
    ],
    ids=["djangos-handler", "dualstreams-handler"],
)
def test_dualstreams_handler_lets_the_producer_write_its_events_itself_and_sends_the_same_body(
    application: Callable[[], Any], writers: list[str]
) -> None:
    # The first item is primed before the response starts, and the end follows the producer's: Django's
    # handler sends those. Each event made after a wait, dualstream's producer writes, with the same send.
    async def scenario() -> list[tuple[str, bytes]]:
        app = application()
        response_task: asyncio.Task[Any] | None = None
        sent: list[tuple[str, bytes]] = []
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])
        # The next event follows each write, not a timer: however late the response task starts, the
        # first event is written before the second is made.
        Paced.written = asyncio.Event()

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is None:
                await asyncio.Event().wait()  # the client stays
            return message  # type: ignore[return-value]

        async def send(message: dict[str, Any]) -> None:
            nonlocal response_task
            if message["type"] == "http.response.start":
                response_task = asyncio.current_task()
            elif message.get("body"):
                sent.append(("response" if asyncio.current_task() is response_task else "producer", message["body"]))
                asyncio.get_running_loop().call_soon(Paced.written.set)

        await asyncio.wait_for(app(http_scope("/paced/"), receive, send), 5)
        return sent

    sent = asyncio.run(scenario())
    assert [writer for writer, _ in sent] == writers
    assert b"".join(body for _, body in sent) == (
        b'data: {"i":0}\n\ndata: {"i":1}\n\ndata: {"i":2}\n\nevent: done\nid: dualstream-completed\ndata: \n\n'
    )


@pytest.mark.parametrize("stuck_at", [1, 2], ids=["first-write", "second-write"])  # dualstream's: the producer's
@pytest.mark.parametrize(
    "application", [get_asgi_application, dualstream_asgi_application], ids=["django", "dualstream"]
)
@pytest.mark.parametrize("replaced", [False, True], ids=["own-body", "body-replaced-by-a-middleware"])
def test_a_disconnect_while_send_blocks_still_closes_produce_before_the_request_finishes(
    replaced: bool, application: Callable[[], Any], stuck_at: int
) -> None:
    middleware = [*settings.MIDDLEWARE, f"{__name__}.MarksStreamedChunks"] if replaced else settings.MIDDLEWARE
    token, probe = new_probe()
    bodies: list[bytes] = []
    finished_first: list[bool] = []  # at request_finished: had produce()'s finally already run?

    def on_finished(**kwargs: Any) -> None:
        if in_this_test.get():  # not another test's request, ending late in the live server
            finished_first.append(probe.finished.is_set())

    async def scenario() -> None:
        in_this_test.set(True)
        app = application()
        body_sent = asyncio.Event()
        disconnected = asyncio.Event()
        messages = iter([{"type": "http.request", "body": b"", "more_body": False}])

        async def receive() -> dict[str, Any]:
            message = next(messages, None)
            if message is not None:
                return message
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                bodies.append(message["body"])
                if len(bodies) == stuck_at:
                    body_sent.set()
                    await asyncio.Event().wait()  # a client that stops reading: send() never returns

        served = asyncio.create_task(app(http_scope("/endless/", f"probe={token}&stream=1"), receive, send))
        await body_sent.wait()
        disconnected.set()
        await asyncio.wait_for(served, 5)

    request_finished.connect(on_finished, weak=False)
    try:
        with override_settings(MIDDLEWARE=middleware):
            asyncio.run(scenario())
    finally:
        request_finished.disconnect(on_finished)
    assert bodies[0].startswith(MarksStreamedChunks.MARK) is replaced
    assert probe.exit in ("cancelled", "closed")
    assert finished_first == [True]


@pytest.mark.parametrize("path", ["/endless/", "/slow-start-no-hb/"], ids=["streaming", "priming"])
def test_a_request_the_server_cancels_ends_its_stream_before_the_cancellation_returns(path: str) -> None:
    # Django's ASGIHandler leaves the view's task running when its own is cancelled (uvicorn's graceful
    # shutdown timeout, hypercorn at shutdown, a test's loop): produce() went on for a client that was gone.
    token, probe = new_probe()
    ended: list[str] = []
    finished: list[bool] = []  # at request_finished: had produce()'s finally already run?

    async def on_end(sender: type, reason: str, request: HttpRequest, **kwargs: Any) -> None:
        if request.GET.get("probe") == token:  # not another test's stream, ending late in the live server
            ended.append(reason)

    def on_finished(**kwargs: Any) -> None:
        if in_this_test.get():  # not another test's request, ending late in the live server
            finished.append(probe.finished.is_set())

    app = dualstream_asgi_application()

    async def marked_app(scope: Any, receive: Any, send: Any) -> None:
        in_this_test.set(True)  # in the application's task: the communicator runs it in an empty context
        await app(scope, receive, send)

    async def scenario() -> list[asyncio.Task[Any]]:
        communicator = ApplicationCommunicator(marked_app, http_scope(path, f"probe={token}&stream=1&delay=100"))
        await communicator.send_input({"type": "http.request", "body": b""})
        if path == "/endless/":
            assert (await communicator.receive_output(5))["status"] == 200
            assert (await communicator.receive_output(5))["body"].startswith(b"data: ")
        else:  # cancelled while the view waits for a first item that is 100 s away
            await asyncio.get_running_loop().run_in_executor(None, probe.started.wait, 5)
        communicator.future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await communicator.future
        assert probe.finished.is_set()  # already: not at the loop's teardown
        return await tasks_left()

    stream_finished.connect(on_end)
    request_finished.connect(on_finished, weak=False)
    try:
        assert asyncio.run(scenario()) == []
    finally:
        stream_finished.disconnect(on_end)
        request_finished.disconnect(on_finished)
    assert probe.exit in ("cancelled", "closed")  # closed: paused on a full buffer, between two items
    assert ended == ["client_gone"] and finished == [True]
