"""How a ``DualModeView`` answers a request, from its attributes and hooks: a batch document, or a stream.

A stream is wired here: the pump built from the view's options, registered in
``lifecycle.streams``, primed, and handed to its ``StreamResponse``; its end is
logged and sent as ``stream_finished`` once, whoever ended it (``Pump.end()``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.core.exceptions import BadRequest
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpResponse
from django.http.response import HttpResponseBase
from django.utils.log import log_response

from .batch import batch_content
from .errors import error_body
from .events import Event
from .lifecycle import streams
from .negotiation import Mode
from .pump import EndReason, Pump, StreamEnd
from .renderers import JSONArrayRenderer, Renderer
from .responses import StreamResponse, WSGIBridge
from .signals import stream_finished
from .threads import producer_context, release_idle_thread

if TYPE_CHECKING:
    from .views import DualModeView

logger = logging.getLogger("dualstream")
request_logger = logging.getLogger("django.request")
#: Items a batch answer collects before letting other tasks run: about 0.5 ms of a produce() that never waits.
BATCH_YIELD_EVERY = 1024


async def respond(view: DualModeView, args: tuple[Any, ...], kwargs: dict[str, Any], *, head: bool) -> HttpResponseBase:
    """The answer to a ``GET``, ``POST`` or ``HEAD`` that reached the view."""
    if view._refusal is not None:
        return view.error_response(*view.get_error_body(view._refusal))
    renderer = view.get_renderer()
    if renderer.completed(view.last_event_id):
        return view.completed_response(renderer)
    if view.mode is Mode.JSON and not view.batch_streaming:
        if not head:
            return await batch_response(view, view.produce(view.request, *args, **kwargs))
        # HEAD of a buffered batch: nothing rendered is sent, and the view's document need not be one
        # that can be streamed (ModelDetailView's is its one item), so the items are primed as a plain list.
        renderer = JSONArrayRenderer(view.dumps)
    if streams.stopping or (view.max_streams is not None and len(streams) >= view.max_streams):
        return unavailable(view)
    return await stream_response(view, renderer, view.produce(view.request, *args, **kwargs), head=head)


async def stream_response(
    view: DualModeView, renderer: Renderer, items: AsyncGenerator[Any, None], *, head: bool
) -> HttpResponseBase:
    """``items`` as a stream: primed for its headers, then handed to the response (for ``HEAD``, closed)."""
    # Under WSGI the loop running this view ends with it: the pump needs a loop that outlasts it.
    bridge = WSGIBridge() if isinstance(view.request, WSGIRequest) else None

    async def ended(end: StreamEnd) -> None:
        streams.discard(pump)
        await _report_end(view, end)

    pump = Pump(
        items,
        renderer,
        keepalive=view.heartbeat,
        buffer_size=view.buffer_size,
        send_timeout=view.send_timeout,
        max_duration=view.max_duration,
        retry=view.reconnect_retry,
        describe_error=lambda exc: _stream_failed(view, exc),
        on_started=release_idle_thread if view.release_request_thread else None,
        on_end=ended,
        context=producer_context(),
        loop=None if bridge is None else bridge.loop,
    )
    streams.add(pump)
    streams.chain_shutdown_handlers()
    handed_over = False
    try:
        await pump.prime()  # on the pump's loop, wherever this runs
        if head:
            await pump.aclose(EndReason.HEAD)
            return HttpResponse(content_type=renderer.content_type, headers=renderer.headers)
        # Any Content-Encoding makes GZipMiddleware keep off: it would compress each chunk apart.
        headers = {**renderer.headers, "Content-Encoding": "identity"}
        response = StreamResponse(pump, bridge=bridge, content_type=renderer.content_type, headers=headers)
        handed_over = True
        return response
    except Exception as exc:  # raised before the first item; a cancellation propagates (prime() closed produce())
        return await exception_response(view, exc)
    finally:
        if bridge is not None and not handed_over:
            bridge.close()


async def batch_response(view: DualModeView, items: AsyncGenerator[Any, None]) -> HttpResponse:
    """``items`` gathered into the view's batch document, or an HTTP error: never a partial 200."""
    limit = view.max_batch_items
    try:
        data: list[Any] = []
        async with aclosing(items):
            async for item in items:
                if limit is not None and len(data) >= limit:
                    raise BadRequest(
                        f"This answer has more than {limit} items: ask for a stream instead "
                        "(?stream=true, ?format=ndjson or Accept: text/event-stream)."
                    )
                # data_of(item), inline: 290 of 61,400 instructions per row (0.4%), benchmarks/export_instructions.py.
                data.append(item.data if isinstance(item, Event) else item)
                if not len(data) % BATCH_YIELD_EVERY:  # other requests get the loop between these items
                    await asyncio.sleep(0)
        content = await batch_content(view.dumps, view.get_batch_document, data)
    except Exception as exc:
        return await exception_response(view, exc)
    return HttpResponse(content, content_type="application/json")


def unavailable(view: DualModeView) -> HttpResponse:
    """503 with ``Retry-After``: the server is stopping, or ``max_streams`` are open."""
    message = "The server is shutting down." if streams.stopping else "Too many open streams; retry later."
    response = view.error_response(503, error_body(503, message))
    response["Retry-After"] = str(max(1, math.ceil(view.reconnect_retry / 1000)))
    return response


async def exception_response(view: DualModeView, exc: Exception) -> HttpResponse:
    """An ordinary HTTP error for a failure before anything was sent, logged once as Django would.

    The client's errors (4xx) are warnings without a traceback; a server error (5xx) carries one.
    """
    status, body = view.get_error_body(exc)
    response = view.error_response(status, body)
    await sync_to_async(log_response, thread_sensitive=False)(
        "%s: %s",
        response.reason_phrase,
        view.request.path,
        response=response,
        request=view.request,
        exception=exc if status >= 500 else None,
    )
    return response


async def _stream_failed(view: DualModeView, exc: Exception) -> dict[str, Any]:
    """Log a failure after the response started (before it, ``exception_response()`` does); the client's body."""
    status, body = view.get_error_body(exc)
    await sync_to_async(request_logger.error, thread_sensitive=False)(
        "Error while streaming: %s",
        view.request.path,
        exc_info=exc,
        extra={"status_code": status, "request": view.request},
    )
    return body


async def _report_end(view: DualModeView, end: StreamEnd) -> None:
    request = view.request
    logger.info(
        "Stream ended (%s): %s, %d items in %.3f s",
        end.reason,
        request.path,
        end.items,
        end.duration,
        extra={"reason": end.reason, "items": end.items, "duration": end.duration, "request": request},
    )
    await stream_finished.asend(
        type(view), request=request, reason=end.reason, items=end.items, duration=end.duration, error=end.error
    )
