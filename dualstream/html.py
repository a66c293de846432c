"""Live HTML for htmx and Datastar from the same ``produce()``.

``Fragment`` and ``Signals`` are ``Event``s, so every renderer that knows
events knows them: plain SSE writes a fragment's HTML as ``data:`` lines (what
htmx swaps), JSON and NDJSON carry the HTML as a string, ``text/html`` (an
``hx-get`` target) writes the fragments in order, and Datastar gets
``datastar-patch-elements`` / ``datastar-patch-signals`` events, written by
``DatastarRenderer`` field for field as ``datastar-py`` writes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import escape

from .events import Event, check_field
from .offload import request_thread_slots

#: Datastar's element patch modes (``datastar_py.consts.ElementPatchMode``).
PATCH_MODES = frozenset({"outer", "inner", "remove", "replace", "prepend", "append", "before", "after"})
#: Largest Datastar signals document ``read_signals()`` accepts, in bytes (query or body).
MAX_SIGNALS_SIZE = 64 * 1024


class Fragment(Event):
    """A piece of HTML for the page: swapped by htmx, patched by Datastar.

    ``selector`` and ``mode`` are Datastar's (``mode`` one of ``PATCH_MODES``;
    None: morph by the elements' ids); ``event`` names the SSE event for htmx's
    ``sse-swap``. Objects with ``__html__()`` (Django's ``SafeString``) are accepted.
    """

    __slots__ = ("mode", "selector")

    def __init__(
        self,
        html: Any,
        *,
        selector: str | None = None,
        mode: str | None = None,
        event: str | None = None,
        id: str | int | None = None,
    ) -> None:
        if not isinstance(html, str):
            to_html = getattr(html, "__html__", None)
            if to_html is None:
                raise TypeError(f"Fragment() takes HTML text, not {type(html).__name__}")
            html = to_html()
        if selector is not None:
            check_field("selector", selector)  # one data line: a line break would end it
        if mode is not None and mode not in PATCH_MODES:
            raise ValueError(f"Fragment.mode must be one of {', '.join(sorted(PATCH_MODES))}, not {mode!r}")
        super().__init__(html, event=event, id=id)
        self.selector = selector
        self.mode = mode

    @property
    def html(self) -> str:
        html: str = self.data
        return html

    def __repr__(self) -> str:
        return f"Fragment({self.data!r}, selector={self.selector!r}, mode={self.mode!r}, event={self.event!r}, id={self.id!r})"


class Signals(Event):
    """Datastar signals to patch (``datastar-patch-signals``); elsewhere the values as JSON.

    In plain SSE it is an event named ``signals``: htmx swaps only unnamed events
    (htmx 4) or the names ``sse-swap`` lists (htmx 2), so state never lands in the page as text.
    """

    __slots__ = ("only_if_missing",)

    def __init__(
        self, values: Mapping[str, Any], *, only_if_missing: bool = False, id: str | int | None = None
    ) -> None:
        if not isinstance(values, Mapping):
            raise TypeError(f"Signals() takes a mapping of signal names to values, not {type(values).__name__}")
        super().__init__(dict(values), event="signals", id=id)
        self.only_if_missing = only_if_missing

    def __repr__(self) -> str:
        return f"Signals({self.data!r}, only_if_missing={self.only_if_missing!r}, id={self.id!r})"


async def render_fragment(
    request: HttpRequest,
    template_name: str | list[str],
    context: Mapping[str, Any] | None = None,
    *,
    selector: str | None = None,
    mode: str | None = None,
    event: str | None = None,
    id: str | int | None = None,
) -> Fragment:
    """A template rendered with ``request`` (context processors, ``{% csrf_token %}``) as a ``Fragment``.

    Rendered in the request's own thread, as Django renders a sync view, so a
    lazy queryset in ``context`` is evaluated there: no ``SynchronousOnlyOperation``,
    and the connection it opens is the one Django closes at the request's end.
    A few such steps run at once per event loop (``offload.REQUEST_THREAD_SLOTS``); more wait their turn.
    """
    async with request_thread_slots():
        html = await sync_to_async(render_to_string, thread_sensitive=True)(template_name, context, request)
    return Fragment(html, selector=selector, mode=mode, event=event, id=id)


def read_signals(request: HttpRequest, *, max_size: int = MAX_SIGNALS_SIZE) -> dict[str, Any]:
    """The Datastar signals a request carries: ``?datastar=`` on GET and DELETE, the JSON body otherwise.

    No signals gives ``{}``, and so does a form's body (``request.POST`` has its
    fields). More than ``max_size`` bytes, invalid JSON or a value that is not an
    object raises ``BadRequest``: from ``produce()`` before its first item, a JSON 400.
    """
    too_large = f"The Datastar signals are larger than {max_size} bytes."
    if request.method in ("GET", "HEAD", "DELETE"):
        text = request.GET.get("datastar", "").encode()
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}  # Datastar's contentType: 'form' sends the form's fields, not signals
    else:
        declared = request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit() and int(declared) > max_size:
            raise BadRequest(too_large)  # before the body is read
        text = request.body
    if len(text) > max_size:
        raise BadRequest(too_large)
    if not text:
        return {}
    try:
        signals = json.loads(text)
    except ValueError:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        raise BadRequest("The Datastar signals are not valid JSON.") from None
    if not isinstance(signals, dict):
        raise BadRequest("The Datastar signals must be a JSON object.")
    return signals


def error_html(payload: Mapping[str, Any]) -> str:
    """The element that shows a stream's failure on the page (``error`` is the library's JSON error body)."""
    error = payload.get("error")
    message = error.get("message") if isinstance(error, Mapping) else None
    status = error.get("status") if isinstance(error, Mapping) else None
    return (
        f'<div class="dualstream-error" role="alert" data-status="{escape(status or "")}">'
        f"{escape(message or 'The stream failed.')}</div>"
    )
