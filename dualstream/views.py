"""``DualModeView``: one async producer, answered as one JSON document or as a stream."""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncGenerator, Callable, Coroutine
from contextlib import aclosing
from functools import cached_property
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIRequest
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.decorators import classonlymethod
from django.utils.log import log_response
from django.views import View

from . import conf
from .encoding import compact_dumps
from .errors import error_body, exception_body
from .events import Dumps, Event
from .negotiation import Mode, NegotiationError, negotiate
from .renderers import COMPLETED_ID, JSONArrayRenderer, NDJSONRenderer, Renderer, SSERenderer
from .streaming import BackgroundLoop, Pump, StreamResponse

logger = logging.getLogger("django.request")
T = TypeVar("T")


def require_async_generator(cls: type, name: str, example: str) -> None:
    """Fail when the URLconf loads, not on the first request, if ``cls.name`` is not an async generator."""
    if not inspect.isasyncgenfunction(getattr(cls, name, None)):
        raise ImproperlyConfigured(f"{cls.__qualname__}.{name}() must be an async generator: {example}")


async def _same_loop(coro: Coroutine[Any, Any, T]) -> T:
    return await coro


class DualModeView(View):
    """Write ``produce()`` once; each request gets it as JSON, Server-Sent Events or NDJSON.

    Subclasses define ``async def produce(self, request, *args, **kwargs)``, an
    async generator. Each item it yields is one element of the JSON document's
    ``items`` list, one SSE event, or one NDJSON line.
    """

    http_method_names = ["get", "post", "head", "options"]

    #: Seconds of silence before a keep-alive comment; None disables.
    heartbeat: float | None = conf.Setting("HEARTBEAT")  # type: ignore[assignment]
    #: The mode when neither a parameter nor ``Accept`` decides: ``"json"``, ``"sse"`` or ``"ndjson"``.
    default_mode: str = conf.Setting("DEFAULT_MODE")  # type: ignore[assignment]
    #: The ``json.JSONEncoder`` subclass for every JSON value written.
    json_encoder: type = conf.Setting("JSON_ENCODER")  # type: ignore[assignment]
    #: Bytes that may wait for a slow client before ``produce()`` is paused.
    buffer_size: int = conf.Setting("BUFFER_SIZE")  # type: ignore[assignment]
    #: Give back Django's per-request thread while the stream runs, when it holds no database connection.
    release_request_thread: bool = conf.Setting("RELEASE_REQUEST_THREAD")  # type: ignore[assignment]
    #: Send the batch document item by item, at constant memory, instead of all at once.
    batch_streaming: bool = False
    #: The renderer for each streamed mode.
    renderer_classes: dict[Mode, type[Renderer]] = {
        Mode.SSE: SSERenderer,
        Mode.NDJSON: NDJSONRenderer,
        Mode.JSON: JSONArrayRenderer,
    }

    produce: Callable[..., AsyncGenerator[Any, None]]

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        require_async_generator(cls, "produce", "async def produce(self, request, *args, **kwargs): ... yield item")
        return super().as_view(**initkwargs)

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = await super().dispatch(request, *args, **kwargs)
        patch_vary_headers(response, ("Accept",))
        return response

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return await self.respond(args, kwargs, head=False)

    post = get

    async def head(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # The headers GET would send, from priming produce() only: an endless producer must not hold HEAD.
        return await self.respond(args, kwargs, head=True)

    async def http_method_not_allowed(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = self.error_response(405, error_body(405, f"Method {request.method} not allowed."))
        response["Allow"] = ", ".join(self._allowed_methods())
        return response

    # Hooks ----------------------------------------------------------------------------------

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event the client saw, for resuming: ``Last-Event-ID``, or ``?lastEventId=``."""
        request = self.request
        # META, not request.headers: building the whole HttpHeaders mapping for one header showed in time to first byte.
        return request.META.get("HTTP_LAST_EVENT_ID") or request.GET.get("lastEventId") or None

    def get_mode(self) -> Mode:
        """The mode this request asks for; raise ``NegotiationError`` to refuse it."""
        request = self.request
        return negotiate(request.GET, request.META.get("HTTP_ACCEPT", ""), Mode(self.default_mode))

    def get_renderer(self, mode: Mode) -> Renderer:
        return self.renderer_classes[mode](self.dumps)

    def get_batch_document(self, items: list[Any]) -> Any:
        """The JSON document of a (buffered) batch answer."""
        return {"items": items}

    def get_error_body(self, exc: Exception) -> tuple[int, dict[str, Any]]:
        """The status and JSON body reporting ``exc``, as an HTTP error or as an ``error`` event."""
        return exception_body(exc, debug=settings.DEBUG)

    def error_response(self, status: int, body: Any) -> HttpResponse:
        return HttpResponse(self.dumps(body), status=status, content_type="application/json")

    @cached_property
    def dumps(self) -> Dumps:
        """Value -> compact JSON text, with the view's encoder."""
        return compact_dumps(self.json_encoder)

    # Wiring ---------------------------------------------------------------------------------

    async def respond(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, head: bool) -> HttpResponseBase:
        try:
            mode = self.get_mode()
        except NegotiationError as exc:
            return self.error_response(*self.get_error_body(exc))
        if mode is Mode.SSE and self.last_event_id == COMPLETED_ID:
            return HttpResponse(status=204)  # a browser reconnecting after "done": it stops on 204
        items = self.produce(self.request, *args, **kwargs)
        if mode is Mode.JSON and not (self.batch_streaming or head):
            return await self.batch_response(items)

        renderer = self.get_renderer(mode)
        pump = Pump(
            items,
            renderer,
            heartbeat=self.heartbeat,
            buffer_size=self.buffer_size,
            on_error=lambda exc: self.stream_failed(exc, renderer),
            release_thread=self.release_request_thread,
        )
        # Under WSGI the loop running this view ends with it: the pump needs a loop that outlasts it.
        wsgi_loop = BackgroundLoop() if isinstance(self.request, WSGIRequest) else None
        run = wsgi_loop.run if wsgi_loop else _same_loop
        try:
            await run(pump.prime(self.heartbeat))
        except Exception as exc:
            if wsgi_loop:
                wsgi_loop.close()
            return await self.exception_response(exc)
        headers = dict(renderer.headers)
        if head:
            await run(pump.aclose())
            if wsgi_loop:
                wsgi_loop.close()
            return HttpResponse(content_type=renderer.content_type, headers=headers)
        # Any Content-Encoding makes GZipMiddleware keep off: it would compress each chunk apart.
        headers["Content-Encoding"] = "identity"
        return StreamResponse(pump, wsgi_loop=wsgi_loop, content_type=renderer.content_type, headers=headers)

    async def batch_response(self, items: AsyncGenerator[Any, None]) -> HttpResponse:
        try:
            async with aclosing(items):
                data = [item.data if isinstance(item, Event) else item async for item in items]
            content = self.dumps(self.get_batch_document(data))
        except Exception as exc:
            return await self.exception_response(exc)
        return HttpResponse(content, content_type="application/json")

    async def exception_response(self, exc: Exception) -> HttpResponse:
        """An ordinary HTTP error for a failure before anything was sent, logged once as Django would.

        The client's errors (4xx) are warnings without a traceback; a server error (5xx) carries one.
        """
        status, body = self.get_error_body(exc)
        response = self.error_response(status, body)
        await sync_to_async(log_response, thread_sensitive=False)(
            "%s: %s", response.reason_phrase, self.request.path,
            response=response, request=self.request, exception=exc if status >= 500 else None,
        )
        return response

    async def stream_failed(self, exc: Exception, renderer: Renderer) -> str | None:
        """Log a failure after the response started; return what tells the client."""
        status, body = self.get_error_body(exc)
        await sync_to_async(logger.error, thread_sensitive=False)(
            "Error while streaming: %s", self.request.path,
            exc_info=exc, extra={"status_code": status, "request": self.request},
        )
        return renderer.error(body)
