"""``DualModeView``: one async producer, answered as one JSON document or as a stream."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from functools import cached_property, update_wrapper
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers
from django.utils.decorators import classonlymethod
from django.views import View

from .conf import Setting
from .encoding import Dumps, compact_dumps
from .errors import error_body, exception_body
from .events import Event
from .negotiation import Mode, NegotiationError, negotiate
from .renderers import (
    COMPLETED_ID,
    DatastarRenderer,
    HTMLRenderer,
    JSONArrayRenderer,
    NDJSONRenderer,
    Renderer,
    SSERenderer,
)
from .respond import exception_response, respond
from .resume import MAX_EVENT_ID_LENGTH

#: The request headers an answer depends on: a cache must not give htmx's HTML or Datastar's events to others.
VARY = ("Accept", "HX-Request", "Datastar-Request")
#: Milliseconds htmx 4 is told to wait before reconnecting after a stream's end (it caps it at 60 s).
HTMX_RETRY_AFTER_END = 60_000


def require_async_generator(cls: type, name: str, example: str) -> None:
    """Fail when the URLconf loads, not on the first request, if ``cls.name`` is not an async generator."""
    if not inspect.isasyncgenfunction(getattr(cls, name, None)):
        raise ImproperlyConfigured(f"{cls.__qualname__}.{name}() must be an async generator: {example}")


class DualModeView(View):
    """Write ``produce()`` once; each request gets it as JSON, Server-Sent Events or NDJSON.

    Subclasses define ``async def produce(self, request, *args, **kwargs)``, an
    async generator. Each item it yields is one element of the JSON document's
    ``items`` list, one SSE event, or one NDJSON line.
    """

    http_method_names = ["get", "post", "head", "options"]

    #: Seconds of silence before a keep-alive; None disables.
    heartbeat = Setting[float | None]("HEARTBEAT")
    #: The modes this view answers, e.g. ``(Mode.SSE, Mode.NDJSON)`` for an endless stream; another is a JSON 406.
    #: None: every mode.
    modes: Sequence[Mode | str] | None = None
    #: The mode when neither a parameter nor ``Accept`` decides: ``"json"``, ``"sse"`` or ``"ndjson"``;
    #: the first of ``modes`` if it is not one of them.
    default_mode = Setting[str]("DEFAULT_MODE")
    #: The ``json.JSONEncoder`` subclass for every JSON value written.
    json_encoder = Setting[type[json.JSONEncoder]]("JSON_ENCODER")
    #: Bytes that may wait for a slow client before ``produce()`` is paused.
    buffer_size = Setting[int]("BUFFER_SIZE")
    #: Give back Django's per-request thread while the stream runs, when it holds no database connection.
    release_request_thread = Setting[bool]("RELEASE_REQUEST_THREAD")
    #: Seconds a client may read nothing while a write waits for it; then it is dropped. None: never.
    send_timeout = Setting[float | None]("SEND_TIMEOUT")
    #: Seconds after which a stream is cut as at shutdown (clients reconnect and resume). None: never.
    max_duration = Setting[float | None]("MAX_DURATION")
    #: Streams open in this process beyond which a new one is refused with a 503. None: no limit.
    max_streams = Setting[int | None]("MAX_STREAMS")
    #: Items a buffered batch answer may hold; beyond it, a 400 that points to stream mode. None: no limit.
    max_batch_items = Setting[int | None]("MAX_BATCH_ITEMS")
    #: Milliseconds a client should wait before reconnecting to a stream the server cut.
    reconnect_retry = Setting[int]("RECONNECT_RETRY")
    #: Send the batch document item by item, at constant memory, instead of all at once.
    batch_streaming: bool = False
    #: The renderer of each mode (JSON: used when ``batch_streaming`` is on, or for HEAD).
    renderer_classes: dict[Mode, type[Renderer]] = {
        Mode.SSE: SSERenderer,
        Mode.NDJSON: NDJSONRenderer,
        Mode.JSON: JSONArrayRenderer,
        Mode.HTML: HTMLRenderer,
        Mode.DATASTAR: DatastarRenderer,
    }

    produce: Callable[..., AsyncGenerator[Any, None]]

    # Request state, set once in setup().
    #: The id of the last event the client saw, for resuming: ``Last-Event-ID``, or ``?lastEventId=``.
    last_event_id: str | None
    #: The mode this request is answered in.
    mode: Mode
    _refusal: NegotiationError | None = None

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        require_async_generator(cls, "produce", "async def produce(self, request, *args, **kwargs): ... yield item")
        modes = initkwargs.get("modes", cls.modes)
        if modes is not None:
            try:
                if not [Mode(mode) for mode in modes]:
                    raise ValueError("it is empty")
            except ValueError as exc:
                names = ", ".join(repr(mode.value) for mode in Mode)
                raise ImproperlyConfigured(f"{cls.__qualname__}.modes: {exc}. Use some of {names}.") from None
        view = super().as_view(**initkwargs)
        # asgiref's test, not inspect's: on Python 3.11 inspect misses the marker that Django's
        # method_decorator() puts on the async dispatch() it wraps.
        if iscoroutinefunction(cls.dispatch):
            return view
        return _with_sync_dispatch(cls, view, initkwargs)

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.last_event_id = self.get_last_event_id()
        try:
            self.mode = self.get_mode()
        except NegotiationError as exc:  # answered by respond.respond(), as the view's own error
            self.mode, self._refusal = self._modes[0], exc

    # django-stubs types View's methods as sync only: an async view overrides them with coroutines.
    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        handler: Awaitable[HttpResponseBase] = super().dispatch(request, *args, **kwargs)  # type: ignore[assignment]
        response = await handler
        patch_vary_headers(response, VARY)
        return response

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return await respond(self, args, kwargs, head=False)

    post = get

    async def head(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # The headers GET would send, from priming produce() only: an endless producer must not hold HEAD.
        return await respond(self, args, kwargs, head=True)

    async def http_method_not_allowed(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = self.error_response(405, error_body(405, f"Method {request.method} not allowed."))
        response["Allow"] = ", ".join(m.upper() for m in self.http_method_names if hasattr(self, m))
        return response

    # Hooks ----------------------------------------------------------------------------------

    def get_last_event_id(self) -> str | None:
        """``Last-Event-ID``, or ``?lastEventId=``; None if absent, empty or too long to be one of ours."""
        request = self.request
        value = request.META.get("HTTP_LAST_EVENT_ID") or request.GET.get("lastEventId")
        return value if value and len(value) <= MAX_EVENT_ID_LENGTH else None

    def get_mode(self) -> Mode:
        """The mode this request asks for; raise ``NegotiationError`` to refuse it. Called once, by ``setup()``."""
        request = self.request
        modes = self._modes
        return negotiate(
            request.GET,
            request.META.get("HTTP_ACCEPT", ""),
            modes[0],
            modes,
            # Known by their headers; where the view does not answer the mode they imply, negotiated as usual.
            htmx=request.META.get("HTTP_HX_REQUEST") == "true",
            datastar=request.META.get("HTTP_DATASTAR_REQUEST") == "true",
        )

    @cached_property
    def _modes(self) -> tuple[Mode, ...]:
        """The modes this view answers, the default first: ``modes`` (None: every mode it has a renderer for)."""
        modes = tuple(Mode) if self.modes is None else tuple(Mode(mode) for mode in self.modes)
        # A subclass's own renderer_classes may lack the newer modes (?format=html is then a 406, not a KeyError).
        modes = tuple(m for m in modes if m is Mode.JSON or m in self.renderer_classes)
        default = Mode(self.default_mode)
        return (default, *(m for m in modes if m is not default)) if default in modes else modes

    def get_renderer(self) -> Renderer:
        """The renderer for this request's mode, from ``renderer_classes``."""
        return self.renderer_classes[self.mode](self.dumps, self.get_batch_document)

    def completed_response(self, renderer: Renderer) -> HttpResponse:
        """The answer to a client reconnecting after the stream's end, so that it stops.

        EventSource and Datastar stop on a 204. htmx 4's SSE extension takes a
        204 for success and reconnects every 0.5 s; it stops on the event its
        ``hx-sse:close`` names, so an htmx request (``HX-Request``) gets the
        final event again, with a ``retry:`` that slows the loop of a page without that attribute.
        """
        if self.mode is Mode.SSE and self.request.META.get("HTTP_HX_REQUEST") == "true":
            return HttpResponse(
                renderer.item(Event("", event="done", id=COMPLETED_ID, retry=HTMX_RETRY_AFTER_END)),
                content_type=renderer.content_type,
                headers=renderer.headers,
            )
        # Typed as the stream it asked for, so that SSE clients (httpx-sse) read an empty stream
        # rather than refuse an HTML answer.
        return HttpResponse(status=204, content_type=renderer.content_type)

    def get_batch_document(self, items: list[Any]) -> Any:
        """The JSON document of a batch answer, buffered or streamed."""
        return {"items": items}

    def get_error_body(self, exc: Exception) -> tuple[int, dict[str, Any]]:
        """The status and JSON body reporting ``exc``, as an HTTP error or as an ``error`` event."""
        return exception_body(exc, debug=settings.DEBUG)

    def error_response(self, status: int, body: Any) -> HttpResponse:
        try:
            content = self.dumps(body).encode()
        except UnicodeEncodeError:  # a message quoting text that cannot be UTF-8: escaped, as ASCII JSON
            content = json.dumps(body, cls=self.json_encoder, separators=(",", ":")).encode()
        return HttpResponse(content, status=status, content_type="application/json")

    @cached_property
    def dumps(self) -> Dumps:
        """Value -> compact JSON text, with the view's encoder."""
        return compact_dumps(self.json_encoder)


def _with_sync_dispatch(
    cls: type[DualModeView], view: Callable[..., Any], initkwargs: dict[str, Any]
) -> Callable[..., Any]:
    """``view`` for a class whose ``dispatch()`` a synchronous mixin overrides (``LoginRequiredMixin``...).

    Django calls such a ``dispatch()`` on the event loop, where its session and
    database reads fail, and then awaits what it returns, which may be a plain
    redirect. Here it runs in the request's thread, as under WSGI; the coroutine
    it returns when it lets the request through is awaited on the loop. An
    exception it raises (``raise_exception = True``) gets the library's JSON error.
    """

    async def view_with_sync_dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self = cls(**initkwargs)
        self.setup(request, *args, **kwargs)
        try:
            result: object = await sync_to_async(self.dispatch)(request, *args, **kwargs)
        except Exception as exc:
            refusal = await exception_response(self, exc)
            patch_vary_headers(refusal, VARY)
            return refusal
        if inspect.isawaitable(result):  # the mixin let the request through to DualModeView.dispatch()
            result = await result
        assert isinstance(result, HttpResponseBase)
        return result

    update_wrapper(view_with_sync_dispatch, view, updated=())
    view_with_sync_dispatch.__dict__.update(view.__dict__)
    return view_with_sync_dispatch
