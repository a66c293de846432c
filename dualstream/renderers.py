"""One renderer per streamed mode: how items, keep-alives, the end, a failure and a cut look on the wire.

A renderer turns values into text; the pump (``pump.py``) decides when that
text is written. Renderers return ``str`` so that the pump can check each
item's text encodes (a lone surrogate does not) and join many into one write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from django.utils.html import escape

from .encoding import ITEMS_MARKER, Dumps, around_items
from .events import Event
from .html import Fragment, Signals, error_html

#: The ``id`` of the final ``done`` event. A browser's EventSource reconnects
#: after every stream and sends the last id it saw: this one says the stream
#: had completed, so the view answers 204 and the browser stops.
COMPLETED_ID = "dualstream-completed"

#: The view's ``get_batch_document()``: the list of items' data -> the batch JSON document.
Document = Callable[[list[Any]], Any]


def items_document(items: list[Any]) -> Any:
    return {"items": items}


class Renderer:
    """Base for the streamed renderers; each instance renders one response."""

    content_type: ClassVar[str]
    #: Text written when the stream has been silent for a keep-alive interval (None: never).
    keepalive: ClassVar[str | None] = None
    #: Extra response headers.
    headers: ClassVar[dict[str, str]] = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    def __init__(self, dumps: Dumps, document: Document = items_document) -> None:
        self.dumps = dumps
        self.document = document

    def start(self) -> str:
        """Text written before the first item (by the producer's task: it may raise as ``produce()`` may)."""
        return ""

    def item(self, item: Any) -> str:
        raise NotImplementedError

    def end(self) -> str:
        """Text written after the last item when ``produce()`` returned normally."""
        return ""

    def error(self, payload: dict[str, Any]) -> str:
        """Text that reports a failure after the response has started; "" ends the stream as it is."""
        return ""

    def cut(self, retry: int) -> str:
        """Text written when the server ends an unfinished stream (shutdown, a limit): never the normal end.

        ``retry`` is the delay in milliseconds a client should wait before it reconnects.
        """
        return ""

    def completed(self, last_event_id: str | None) -> bool:
        """Whether a client reconnecting with ``last_event_id`` already received this stream's end."""
        return False


class SSERenderer(Renderer):
    """``text/event-stream``: items are events; the end is a ``done`` event, a failure an ``error`` event.

    An ``Event`` is written with its fields; any other item as an event with only
    ``data``. Data that is a ``str`` is sent as text, anything else as JSON.
    """

    content_type = "text/event-stream; charset=utf-8"
    # A comment that ends no event block: a parser holding a last id dispatches nothing for it.
    keepalive = ": ping\n"

    def item(self, item: Any) -> str:
        # One call per item and no helpers (Event.encode() and data_field() were two more: 1,000 instructions
        # per SSE row), fields unpacked three at a time (five in one: 370 more, 0.5%); export_instructions.py.
        if isinstance(item, Event):
            data = item.data
            text = data if isinstance(data, str) else item.json or self.dumps(data)
            event, id, retry = item.event, item.id, item.retry
        else:
            text = item if isinstance(item, str) else self.dumps(item)
            event = id = retry = None
        if "\n" in text or "\r" in text:
            text = _lf(text).replace("\n", "\ndata: ")  # a line each: a break would end the field
        if event is None and retry is None:  # the common shapes, a queryset's rows among them
            return f"data: {text}\n\n" if id is None else f"id: {id}\ndata: {text}\n\n"
        head = "" if event is None else f"event: {event}\n"
        if id is not None:
            head += f"id: {id}\n"
        if retry is not None:
            head += f"retry: {retry}\n"
        return f"{head}data: {text}\n\n"

    def end(self) -> str:
        # Named, so that onmessage handlers never see it.
        return SSERenderer.item(self, Event("", event="done", id=COMPLETED_ID))

    def error(self, payload: dict[str, Any]) -> str:
        return SSERenderer.item(self, Event(payload, event="error"))

    def cut(self, retry: int) -> str:
        # A field, not an event: it sets the reconnection delay as it is parsed, and the block it
        # opens is discarded unfinished when the stream ends, so no parser dispatches anything.
        return f"retry: {retry}\n"

    def completed(self, last_event_id: str | None) -> bool:
        return last_event_id == COMPLETED_ID


class NDJSONRenderer(Renderer):
    """``application/x-ndjson``: one JSON value per line, for curl, jq and scripts.

    No keep-alives: a blank line is not a JSON value and would break naive line readers.
    """

    content_type = "application/x-ndjson; charset=utf-8"

    def item(self, item: Any) -> str:
        if not isinstance(item, Event):
            return self.dumps(item) + "\n"
        text = item.json
        if text is None or "\n" in text or "\r" in text:  # one line per value: not JSON text as laid out
            text = self.dumps(item.data)
        return text + "\n"

    def error(self, payload: dict[str, Any]) -> str:
        return self.dumps(payload) + "\n"

    def cut(self, retry: int) -> str:
        return self.error({"error": {"status": 503, "message": "The server ended the stream: retry.", "retry": retry}})


class JSONArrayRenderer(Renderer):
    """The batch document (``get_batch_document()``'s) written item by item, at constant memory.

    A failure or a cut leaves the document unterminated, so that no client
    takes it for complete.
    """

    content_type = "application/json"
    keepalive = " "  # whitespace between JSON tokens is valid and keeps proxies awake
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, dumps: Dumps, document: Document = items_document) -> None:
        super().__init__(dumps, document)
        self.closing = ""
        self._separator = ""

    def start(self) -> str:
        # The document with a marker list in place of the items, split around that list.
        split = around_items(self.dumps, self.document([ITEMS_MARKER]))
        if split is None:
            raise TypeError(
                "get_batch_document() must put the items list in the document as it is, to stream it "
                "(batch_streaming = True)"
            )
        opening, closing = split
        self.closing = "]" + closing
        return opening + "["

    def item(self, item: Any) -> str:
        if isinstance(item, Event):
            text = self._separator + (item.json or self.dumps(item.data))
        else:
            text = self._separator + self.dumps(item)
        self._separator = ","
        return text

    def end(self) -> str:
        return self.closing


class HTMLRenderer(Renderer):
    """``text/html``: each fragment's HTML in order, for an ``hx-get`` target (``?format=html``, htmx requests).

    A ``str`` item is HTML as it is; ``Signals`` are Datastar state, not content,
    and are left out; any other value is written as escaped JSON text. A failure
    after the first item appends an ``role="alert"`` element; a cut just ends the
    response (htmx does not reconnect a plain request).
    """

    content_type = "text/html; charset=utf-8"

    def item(self, item: Any) -> str:
        if isinstance(item, Event):
            if isinstance(item, Signals):
                return ""
            data = item.data
            return data if isinstance(data, str) else escape(item.json or self.dumps(data))
        return item if isinstance(item, str) else escape(self.dumps(item))

    def error(self, payload: dict[str, Any]) -> str:
        return error_html(payload)


class DatastarRenderer(SSERenderer):
    """Server-Sent Events as Datastar v1 reads them, field for field as ``datastar-py`` writes them.

    A ``Fragment`` (or a plain ``str`` of HTML) is a ``datastar-patch-elements``
    event; ``Signals`` (or a plain mapping, as Datastar reads a JSON answer) a
    ``datastar-patch-signals`` event; text ``datastar-py`` made
    (``ServerSentEventGenerator.patch_elements()``...) passes through as it is;
    an ``Event`` is written as plain SSE. Datastar ignores events not named
    ``datastar-*``, so a failure is shown as an element appended to ``<body>``.
    The final ``done`` event is kept: Datastar ignores it but remembers its id,
    so a client set to ``retry: 'always'`` reconnects with it and gets the 204 it stops on.
    """

    def item(self, item: Any) -> str:
        if isinstance(item, Fragment):
            return patch_elements(item.data, item.selector, item.mode, item.id)
        if isinstance(item, Signals):
            return patch_signals(self.dumps(item.data), item.only_if_missing, item.id)
        if isinstance(item, str):
            if item.startswith("event: datastar-") and item.endswith("\n\n"):
                return item  # a datastar-py DatastarEvent: already an event block
            return patch_elements(item, None, None, None)
        if isinstance(item, Mapping):
            return patch_signals(self.dumps(item), False, None)
        return super().item(item)

    def error(self, payload: dict[str, Any]) -> str:
        # With the end's id: Datastar set to retry 'always' reconnects after any end, and a failure
        # replayed once a second helps nobody; with this id the reconnect gets the 204 it stops on.
        return patch_elements(error_html(payload), "body", "append", COMPLETED_ID)


def patch_elements(html: str, selector: str | None, mode: str | None, id: str | int | None) -> str:
    """A ``datastar-patch-elements`` event, as ``ServerSentEventGenerator.patch_elements()`` writes it."""
    head = "event: datastar-patch-elements\n"
    if id is not None and id != "":
        head += f"id: {id}\n"
    if mode is not None and mode != "outer":
        head += f"data: mode {mode}\n"
    if selector:
        head += f"data: selector {selector}\n"
    if html:
        head += _prefixed("data: elements ", html)
    return head + "\n"


def patch_signals(json_text: str, only_if_missing: bool, id: str | int | None) -> str:
    """A ``datastar-patch-signals`` event, as ``ServerSentEventGenerator.patch_signals()`` writes it."""
    head = "event: datastar-patch-signals\n"
    if id is not None and id != "":
        head += f"id: {id}\n"
    if only_if_missing:
        head += "data: onlyIfMissing true\n"
    return head + _prefixed("data: signals ", json_text) + "\n"


def _lf(text: str) -> str:
    """``text`` with each line break SSE knows (CRLF, CR, LF) as LF: C-speed passes, no per-line work."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _prefixed(prefix: str, text: str) -> str:
    """Each of ``text``'s lines after ``prefix``, as ``str.splitlines()`` gives them (a last line break opens no
    empty line), split only where SSE splits (CR, LF, CRLF): datastar-py's ``splitlines()`` also breaks on U+2028,
    form feeds and the like, which Datastar then joins back with LF, changing the HTML; here they stay."""
    text = _lf(text)
    if text.endswith("\n"):
        text = text[:-1]
    return prefix + text.replace("\n", "\n" + prefix) + "\n"
