"""Reading a dualstream response in a test: its first events or items, how it ended, then closing it.

``read_stream()`` takes a response of Django's test ``Client``, ``aread_stream()``
one of its ``AsyncClient``, ``fetch_stream()`` a URL of a live server (read
with httpx). Each reads up to ``limit`` items (every item when None), then
closes the response: for the test clients, ``produce()``'s ``finally`` has
run when they return. See docs/testing.md.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .events import Event
from .renderers import COMPLETED_ID

if TYPE_CHECKING:
    import httpx
    from django.http.response import HttpResponseBase

__all__ = ["Received", "aread_stream", "fetch_stream", "read_stream"]

#: How a stream ended: its ``done``; an error (an HTTP error, an ``error`` event, an NDJSON error line, a
#: batch left unterminated); cut by the server (no end: a client would reconnect). None: still open when
#: the reading stopped at ``limit``.
End = Literal["done", "error", "cut"] | None

_LINE = re.compile(r"\r\n|\r|\n")


@dataclass
class Received:
    """What was read of one response."""

    status: int
    #: The media type, without parameters: ``text/event-stream``, ``application/x-ndjson``, ``application/json``.
    content_type: str
    #: Each item as an ``Event``: in SSE with its fields (``data`` as the text sent), else ``Event(item)``.
    events: list[Event] = field(default_factory=list)
    end: End = None
    #: The ``{"status", "message", ...}`` of the error that ended it, if one did.
    error: dict[str, Any] | None = None
    #: The batch document (JSON mode), when it was complete.
    document: Any = None

    @property
    def items(self) -> list[Any]:
        """Each item's data; SSE data that is JSON decoded (dualstream sends any non-``str`` item as JSON)."""
        return [_decoded(event.data) if self.content_type == "text/event-stream" else event.data for event in self]

    @property
    def ids(self) -> list[str | int | None]:
        return [event.id for event in self]

    @property
    def names(self) -> list[str]:
        """Each event's name; ``message`` for an unnamed one, as ``EventSource`` names it."""
        return [event.event or "message" for event in self]

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


def read_stream(response: HttpResponseBase, limit: int | None = None) -> Received:
    """The first ``limit`` items of a response of Django's ``Client``; then it is closed, ``produce()`` with it.

    With the sync ``Client`` the view's producer runs on a thread of its own:
    tests whose producer reads the database need ``django_db(transaction=True)``.
    """
    received, reader = _start(response, limit)
    if reader is None:
        return received
    chunks = iter(response)
    try:
        for chunk in chunks:
            if reader.feed(chunk):
                return received
        reader.finish()
    finally:
        close = getattr(chunks, "close", None)  # a generator: closing it closes the pump and its producer
        if close is not None:
            close()
    return received


async def aread_stream(response: HttpResponseBase, limit: int | None = None) -> Received:
    """``read_stream()`` for a response of Django's ``AsyncClient``."""
    received, reader = _start(response, limit)
    if reader is None:
        return received
    chunks: AsyncIterator[bytes] = aiter(response)  # type: ignore[arg-type]  # a streaming response
    try:
        async for chunk in chunks:
            if reader.feed(chunk):
                return received
        reader.finish()
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return received


def fetch_stream(
    url: str, limit: int | None = None, *, headers: dict[str, str] | None = None, client: httpx.Client | None = None
) -> Received:
    """The first ``limit`` items at ``url`` of a live server, read with httpx; then the connection is closed.

    The server learns of the disconnect and cancels ``produce()``: after this returns, not before.
    ``client`` (e.g. holding a session cookie) is used if given.
    """
    import httpx

    with (
        httpx.Client(timeout=30) if client is None else nullcontext(client) as http,
        http.stream("GET", url, headers=headers) as response,
    ):
        received = Received(response.status_code, _media_type(response.headers.get("content-type", "")))
        reader = _reader(received, limit)
        if reader is None or response.status_code >= 300:
            _buffered(received, response.read(), reader)
            return received
        for chunk in response.iter_bytes():  # decoded: a batch may come gzipped
            if reader.feed(chunk):
                return received
        reader.finish()
    return received


def _start(response: HttpResponseBase, limit: int | None = None) -> tuple[Received, _Reader | None]:
    """The result to fill, and a reader for a streamed body (None: it has been read already)."""
    received = Received(response.status_code, _media_type(response.get("Content-Type", "")))
    reader = _reader(received, limit)
    if response.streaming:
        if reader is None:
            raise ValueError(f"Not a stream dualstream.testing reads: {received.content_type!r}")
        return received, reader
    _buffered(received, response.content, reader)  # type: ignore[attr-defined]
    return received, None


def _buffered(received: Received, body: bytes, reader: _Reader | None) -> None:
    """A body read whole: an error, a 204, a buffered batch, or a stream of a type read by no reader."""
    if received.status >= 400:
        received.end = "error"
        try:
            received.error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            received.error = {"status": received.status, "message": body.decode(errors="replace")}
    elif received.status == 204:
        received.end = "done"  # a reconnect after the stream completed
    elif reader is not None and not reader.feed(body):
        reader.finish()


def _media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _reader(received: Received, limit: int | None) -> _Reader | None:
    readers: dict[str, type[_Reader]] = {
        "text/event-stream": _SSEReader,
        "application/x-ndjson": _NDJSONReader,
        "application/json": _JSONReader,
    }
    cls = readers.get(received.content_type)
    return None if cls is None else cls(received, limit)


def _decoded(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


class _Reader:
    """Bytes in, events out: ``feed()`` is True once ``limit`` items are in, or the stream's end is."""

    def __init__(self, received: Received, limit: int | None) -> None:
        self.received = received
        self.limit = limit
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""

    def feed(self, chunk: bytes) -> bool:
        self._text += self._decoder.decode(chunk)
        return self.parse(final=False)

    def finish(self) -> None:
        """The body has ended."""
        self._text += self._decoder.decode(b"", final=True)
        self.parse(final=True)
        if self.received.end is None:
            self.received.end = self.ended()

    def parse(self, *, final: bool) -> bool:
        raise NotImplementedError

    def ended(self) -> End:
        """How a body that ended with no explicit end ended."""
        return "done"

    def add(self, event: Event) -> bool:
        self.received.events.append(event)
        return self.limit is not None and len(self.received.events) >= self.limit


class _SSEReader(_Reader):
    """Server-Sent Events, parsed as the WHATWG standard says (comments and unknown fields ignored)."""

    def __init__(self, received: Received, limit: int | None) -> None:
        super().__init__(received, limit)
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def parse(self, *, final: bool) -> bool:
        lines = _LINE.split(self._text)
        # The last piece is unfinished (or a lone CR that a LF may follow): kept for the next chunk.
        self._text = "" if final else lines.pop()
        for line in lines:
            if line:
                self._field(line)
            elif self._dispatch():
                return True
        return self.received.end is not None

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if not name and colon:
            return  # a comment: a keep-alive
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> bool:
        data, event, id, retry = "\n".join(self._data), self._event, self._id, self._retry
        had_data = bool(self._data)
        self._data, self._event, self._retry = [], None, None
        if not had_data:
            return False
        if event == "done" and id == COMPLETED_ID:
            self.received.end = "done"
            return True
        if event == "error":
            body = _decoded(data)
            self.received.end = "error"
            self.received.error = body.get("error") if isinstance(body, dict) else {"message": data}
            return True
        return self.add(Event(data, event=event or None, id=id, retry=retry))

    def ended(self) -> End:
        return "cut"  # no done, no error: a client reconnects


class _NDJSONReader(_Reader):
    """One JSON value per line; a last line ``{"error": {...}}`` is the stream's error, or its cut (with ``retry``)."""

    def parse(self, *, final: bool) -> bool:
        *lines, self._text = self._text.split("\n")
        if final and self._text:
            lines.append(self._text)
            self._text = ""
        for line in lines:
            if not line:
                continue
            value = json.loads(line)
            if isinstance(value, dict) and set(value) == {"error"} and isinstance(value["error"], dict):
                self.received.end = "cut" if "retry" in value["error"] else "error"
                self.received.error = value["error"]
                return True
            if self.add(Event(value)):
                return True
        return False


class _JSONReader(_Reader):
    """The batch document, buffered or streamed: its items once it is complete; unterminated, an error."""

    def parse(self, *, final: bool) -> bool:
        if not final:
            return False
        try:
            document = json.loads(self._text)
        except ValueError:
            self.received.end = "error"  # left unterminated: produce() failed, or the stream was cut
            return True
        self.received.document = document
        self.received.end = "done"
        items = document.get("items") if isinstance(document, dict) else None
        return any(self.add(Event(item)) for item in (items if isinstance(items, list) else [document]))

    def feed(self, chunk: bytes) -> bool:
        self._text += self._decoder.decode(chunk)
        return False  # a document is read whole
