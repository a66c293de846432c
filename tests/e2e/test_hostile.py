"""Hostile input through the real ASGI application: property tests over the whole request surface.

Requests are hand-built ASGI scopes sent to ``get_asgi_application()`` in the test's own event loop
(not Django's test client), so that the status, the header bytes and the body bytes checked are
exactly what a server would write. Whatever a client sends (any ``Accept``, any query string, any
``Last-Event-ID`` bytes) and whatever a producer yields (any ``data``, ``event``, ``id``, ``retry``),
the answer is never a 5xx, never a hang, never a header or an SSE field the view did not write, and
an error never echoes more than a short prefix of the client's input.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote

import pytest
from django.core.asgi import get_asgi_application
from django.http import HttpRequest, QueryDict
from django.urls import include, path
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dualstream import DualModeView, Event
from tests.models import Sample

# The producer under test: it yields what a test registered ------------------------------------


@dataclass(frozen=True)
class Item:
    """One thing ``produce()`` yields: ``data`` itself, or ``Event(data, **fields)`` built inside ``produce()``."""

    data: Any
    fields: dict[str, Any] | None = None


_registered: dict[str, list[Item]] = {}


def register(items: list[Item]) -> str:
    token = uuid.uuid4().hex
    _registered[token] = items
    return token


class YieldView(DualModeView):
    """Yields the items registered under ``?items=``; an Event is built here, so the view sees its refusal."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for item in _registered[request.GET["items"]]:
            yield item.data if item.fields is None else Event(item.data, **item.fields)


urlpatterns = [
    path("hostile/yield/", YieldView.as_view()),
    path("hostile/yield-streamed/", YieldView.as_view(batch_streaming=True)),
    path("", include("tests.support.urls")),
]
pytestmark = pytest.mark.urls(__name__)

# An ASGI client ---------------------------------------------------------------------------------

#: Seconds an exchange may take, disconnect included: more is a hang.
TIMEOUT = 5.0


@dataclass
class Reply:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool  # the application ended the body itself, before the client left


async def _exchange(
    method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], max_chunks: int, patience: float | None
) -> Reply:
    """One request. The client leaves (``http.disconnect``) after ``max_chunks`` body messages, or when
    ``patience`` seconds pass without a complete answer: how a client gets away from an endless view."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    reply = Reply(0, [], b"", False)
    chunks = 0
    requested, left = False, asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal chunks
        if left.is_set():
            return
        if message["type"] == "http.response.start":
            reply.status = message["status"]
            reply.headers = [(name.lower(), value) for name, value in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            reply.body += message.get("body", b"")
            chunks += 1
            if not message.get("more_body", False):
                reply.complete = True
            elif chunks >= max_chunks:
                left.set()

    if patience is not None:
        asyncio.get_running_loop().call_later(patience, left.set)
    try:
        await get_app()(scope, receive, send)
    except Exception as exc:
        raise AssertionError(
            f"the application raised {exc!r} after status {reply.status} and {len(reply.body)} body bytes:"
            " a server answers 500, or cuts the response short"
        ) from exc
    return reply


@cache
def get_app() -> Any:
    return get_asgi_application()


def exchange(
    path: str,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    method: str = "GET",
    max_chunks: int = 8,
    patience: float | None = None,
) -> Reply:
    try:
        exchanged = _exchange(method, path, query, headers or [], max_chunks, patience)
        return asyncio.run(asyncio.wait_for(exchanged, TIMEOUT))
    except TimeoutError:
        raise AssertionError(f"hang: {method} {path}?{query[:200]!r} got no complete answer in {TIMEOUT} s") from None


# A strict text/event-stream parser (WHATWG HTML, "Server-sent events") ---------------------------


@dataclass
class Block:
    """The fields of one dispatched event, as written: ``event``/``id``/``retry`` None when absent."""

    data: list[str] = field(default_factory=list)
    event: str | None = None
    id: str | None = None
    retry: str | None = None

    @property
    def type(self) -> str:
        return self.event or "message"

    @property
    def text(self) -> str:
        return "\n".join(self.data)


_LINES = re.compile(r"\r\n|\r|\n")


def parse_sse(body: bytes, complete: bool) -> list[Block]:
    """The events of a stream; anything a spec parser would read differently from what was meant fails.

    Stricter than browsers: every line is a comment or a known field with a colon; a block sets
    ``event``, ``id`` and ``retry`` at most once and always carries ``data`` (a block without it
    is dropped by browsers and breaks OpenAI's SDK); ids hold no NUL; ``retry`` is digits.
    """
    text = body.decode("utf-8")  # strict: a server writes UTF-8, and nothing else
    assert not text.startswith("\ufeff"), "a BOM starts the stream"
    lines = _LINES.split(text)
    if complete:
        assert lines[-2:] == ["", ""], f"the stream ends mid-event: {text[-200:]!r}"
    lines.pop()  # the text after the last line break: empty, or a line the client left before reading whole
    blocks, block = [], Block()
    for line in lines:
        if line == "":
            if block != Block():
                assert block.data, f"a block without data: {block}"
                blocks.append(block)
            block = Block()
        elif not line.startswith(":"):
            name, colon, value = line.partition(":")
            assert colon, f"a line that is no field: {line!r}"
            value = value.removeprefix(" ")
            if name == "data":
                block.data.append(value)
            elif name in ("event", "id", "retry"):
                assert getattr(block, name) is None, f"{name} set twice in one event: {line!r}"
                setattr(block, name, value)
            else:
                raise AssertionError(f"an unknown field: {line!r}")
    assert all(b.id is None or "\0" not in b.id for b in blocks), "an id with NUL"
    assert all(b.retry is None or (b.retry.isascii() and b.retry.isdigit()) for b in blocks), "a bad retry"
    return blocks


# Checks on any answer ----------------------------------------------------------------------------

#: Every response header a dualstream view (behind tests/support/settings.py's middleware) may write.
ALLOWED_HEADERS = {
    b"content-type",
    b"content-length",
    b"content-encoding",
    b"vary",
    b"cache-control",
    b"x-accel-buffering",
    b"x-frame-options",
    b"x-content-type-options",
    b"referrer-policy",
    b"cross-origin-opener-policy",
}
#: How much of the client's input an error may quote back.
ECHO_LIMIT = 100


def check_headers(reply: Reply) -> None:
    names = {name.lower() for name, _ in reply.headers}
    assert names <= ALLOWED_HEADERS, f"unexpected response headers: {names - ALLOWED_HEADERS}"
    for name, value in reply.headers:
        assert not re.search(rb"[\r\n\0]", value), f"header {name!r} carries a line break: {value[:200]!r}"


def check_no_echo(reply: Reply, sent: list[str]) -> None:
    """An error quotes at most ``ECHO_LIMIT`` characters of any one thing the client sent, in any spelling."""
    if reply.status < 400:
        return
    body = reply.body.decode("utf-8", "replace")
    try:
        texts = [body, *strings(json.loads(body))]
    except ValueError:
        texts = [body]
    for value in sent:
        if len(value) <= ECHO_LIMIT:
            continue
        quoted = value[: ECHO_LIMIT + 1]
        for spelling in (quoted, repr(quoted)[1:-1], json.dumps(quoted)[1:-1]):
            assert not any(spelling in text for text in texts), (
                f"the {reply.status} body echoes {len(value)} characters sent: {body[:300]!r}"
            )


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for element in value:
            yield from strings(element)
    elif isinstance(value, dict):
        for key, element in value.items():
            yield key
            yield from strings(element)


def server_error(value: Any) -> bool:
    """Is ``value`` a library error document for a 5xx?"""
    return isinstance(value, dict) and isinstance(value.get("error"), dict) and value["error"].get("status", 0) >= 500


# The request surface ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str = "GET"
    accept: bytes | None = None
    query: bytes = b""
    last_event_id: bytes | None = None

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={_short(getattr(self, name))}" for name in ("method", "accept", "query", "last_event_id")
        )
        return f"Request({fields})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def headers(self) -> list[tuple[bytes, bytes]]:
        pairs = [(b"accept", self.accept), (b"last-event-id", self.last_event_id)]
        return [(name, value) for name, value in pairs if value is not None]

    def sent(self) -> list[str]:
        """What the client sent, as Django decodes it (headers are latin-1, the query percent-decoded UTF-8)."""
        texts = [h.decode("latin-1") for h in (self.accept, self.last_event_id) if h is not None]
        for key, values in QueryDict(self.query.decode("ascii")).lists():
            texts += [key, *values]
        return texts


def _short(value: object) -> str:
    """``repr(value)``, a long one cut to its start and its length: a failing example of 1 MB stays readable."""
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:60]}...<{len(value)} long>"  # type: ignore[arg-type]


# Header values as an HTTP/1.1 server passes them: no CR, LF or NUL; any other latin-1 byte.
_HEADER_BYTES = [0x09, *range(0x20, 0x7F), *range(0x80, 0x100)]
header_bytes = st.lists(st.sampled_from(_HEADER_BYTES), max_size=40).map(bytes)
long_header_bytes = st.builds(
    lambda unit, n: unit * n,
    st.lists(st.sampled_from(_HEADER_BYTES), min_size=1, max_size=3).map(bytes),
    st.integers(1, 400_000),
)
digits = st.builds(lambda n: b"9" * n, st.integers(1, 6000))
# What int() and str.isdigit() disagree on, or read as more than a count: signs, spaces, "_", "²" (latin-1 0xB2).
_NUMBERISH = [b"\xb2", b"1\xb9", b"-1", b"+1", b" 7 ", b"1_0", b"0x10", b"1e3", b"00", b"-" + b"9" * 20, b"9" * 19]
last_event_ids = st.one_of(
    st.none(),
    header_bytes,
    long_header_bytes,
    digits,
    st.sampled_from(_NUMBERISH),
    st.integers(-(2**70), 2**70).map(lambda i: str(i).encode()),
)

latin_1 = st.characters(codec="latin-1")
_MEDIA = [
    "text/event-stream",
    "application/json",
    "application/x-ndjson",
    "*/*",
    "text/*",
    "application/*",
    "text/html",
    "a/b/c",
    "*",
    "",
]
_Q = ["0", "1", "0.5", "1.0", "0.000", "-1", "2", "nan", "inf", "1e-3", " 0", "x", ""]
media_range = st.builds(
    lambda media, params: media + "".join(f";{p}" for p in params),
    st.sampled_from(_MEDIA) | st.text(latin_1, max_size=10),
    st.lists(st.sampled_from(["q=" + q for q in _Q]) | st.text(latin_1, max_size=8), max_size=2),
)
accept_text = st.lists(media_range, max_size=4).map(",".join) | st.text(latin_1, max_size=40)
accepts = st.none() | accept_text.map(lambda t: re.sub("[\r\n\0]", "", t).encode("latin-1"))

_KEYS = ["stream", "format", "lastEventId", "items", "n"]
_VALUES = ["true", "1", "yes", "on", "false", "0", "off", "sse", "json", "ndjson", "SSE", "dualstream-completed"]
_VALUES += ["", "²", "-1", " 7", "1_0", "9" * 30]
# A query value: percent-encoded text or bytes (the ASGI query_string is percent-encoded ASCII), or ASCII left raw.
query_value = st.one_of(
    (st.sampled_from(_VALUES) | st.text(max_size=20)).map(lambda t: quote(t, safe="", errors="surrogatepass")),
    st.binary(max_size=10).map(lambda b: "".join(f"%{c:02X}" for c in b)),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"), max_size=10),
    st.builds(lambda n: "9" * n, st.integers(0, 5000)),
)
query_pair = st.builds(lambda k, v: f"{k}={v}", st.sampled_from(_KEYS) | query_value, query_value) | query_value
queries = st.lists(query_pair, max_size=4).map(lambda pairs: "&".join(pairs).encode("ascii"))

requests = st.builds(Request, st.sampled_from(["GET", "HEAD"]), accepts, queries, last_event_ids)

# A producer whose items the request surface runs against: ids, a named event, a retry.
_BENIGN = register(
    [Item({"i": 0}, {"id": "0"}), Item({"i": 1}), Item([1, "x"], {"event": "progress", "id": "1", "retry": 5})]
)


@dataclass(frozen=True)
class Target:
    path: str
    #: Appended to the hostile query: the test views' own controls (a later value wins in a QueryDict).
    controls: str = ""
    #: SSE event types the view sends.
    events: frozenset[str] = frozenset({"message", "done"})
    database: bool = False
    #: Seconds the client waits for a complete answer before it leaves (None: it waits; an endless batch never ends).
    patience: float | None = None


TARGETS = {
    "count": Target("/count/", "n=3&fail=&after=0&interval=0&probe="),
    "count-streamed": Target("/count-streamed/", "n=3&fail=&after=0&interval=0&probe="),
    "count-sse": Target("/count-sse/", "n=3&fail=&after=0&interval=0&probe="),
    "resumable": Target("/resumable/"),
    "endless": Target("/endless/", "size=10&probe=", patience=0.05),
    "yield": Target("/hostile/yield/", f"items={_BENIGN}", frozenset({"message", "progress", "done"})),
    "demo-ticker": Target("/api/ticker/", "interval=0"),
    "demo-feed": Target("/api/feed/", "interval=0"),
    "queryset": Target("/qs/default/rows/", "chunk=7&fail_at=", database=True),
    "queryset-streamed": Target("/qs/default/rows-streamed/", "chunk=7&fail_at=", database=True),
}


def check_answer(target: Target, request: Request, reply: Reply) -> None:
    """What any answer to any request must be: below 500, with only allowed headers, well-formed, no long echo."""
    if reply.status == 0:
        assert target.patience is not None, "no answer"
        return  # the client left before the headers: an endless batch, as asked
    assert reply.status < 500, f"{reply.status}: {reply.body[:300]!r}"
    check_headers(reply)
    check_no_echo(reply, request.sent())
    content_type = dict(reply.headers).get(b"content-type", b"")
    if request.method == "HEAD":
        return  # the server drops the body of an answer to HEAD
    if reply.status == 204:
        assert reply.body == b""
    elif reply.status >= 400:
        assert content_type == b"application/json" and "error" in json.loads(reply.body)
    elif content_type.startswith(b"text/event-stream"):
        for block in parse_sse(reply.body, reply.complete):
            assert block.type in target.events | {"error"}, f"an event the view never sends: {block}"
            assert not (block.type == "error" and server_error(json.loads(block.text))), f"a 5xx mid-stream: {block}"
            if block.type != "done":
                json.loads(block.text)  # every item these views yield is JSON
        assert reply.body or not reply.complete, "an empty 200"
    elif content_type.startswith(b"application/x-ndjson"):
        *lines, rest = reply.body.split(b"\n")  # rest: empty, or a line the client left before reading whole
        for line in lines:
            assert not server_error(json.loads(line)), f"a 5xx mid-stream: {line[:300]!r}"
        assert rest == b"" or not reply.complete, "the last line is unterminated"
    else:
        assert content_type == b"application/json", content_type
        if reply.complete:
            assert isinstance(json.loads(reply.body)["items"], list)


@pytest.mark.parametrize("name", [n for n, t in TARGETS.items() if not t.database])
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(request=requests)
@example(request=Request(last_event_id=b"9" * 4301))
@example(request=Request(last_event_id=b"\xb2"))
@example(request=Request(query=b"lastEventId=%C2%B2"))
@example(request=Request(last_event_id=b"x" * 1_000_000))
def test_any_request_gets_a_safe_answer(name: str, request: Request) -> None:
    target = TARGETS[name]
    check_answer(target, request, send_request(target, request))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", [n for n, t in TARGETS.items() if t.database])
@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(request=requests)
@example(request=Request(last_event_id=b"9" * 30))
@example(request=Request(last_event_id=b"x" * 1_000_000))
def test_any_request_to_a_queryset_export_gets_a_safe_answer(name: str, request: Request) -> None:
    Sample.top_up("default", 20)
    target = TARGETS[name]
    check_answer(target, request, send_request(target, request))


def send_request(target: Target, request: Request) -> Reply:
    query = b"&".join(part for part in (request.query, target.controls.encode()) if part)
    return exchange(target.path, query, request.headers(), request.method, patience=target.patience)


# What a producer yields ---------------------------------------------------------------------------

# Text with what matters to SSE and UTF-8 mixed in: line breaks, NUL, a lone surrogate, a BOM, field names.
_SPECIAL = ["\r", "\n", "\r\n", "\0", "\ud800", "\udfff", "\ufeff", "\u2028", "\x85", ":", " ", "data: x", "id: x"]
texts = st.lists(st.characters(exclude_categories=()) | st.sampled_from(_SPECIAL), max_size=8).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(texts, children, max_size=3),
    max_leaves=6,
)
event_fields = st.fixed_dictionaries(
    {},
    optional={
        "event": texts,
        "id": texts | st.integers() | st.just(True),  # an int id is always valid; a bool is no int
        "retry": st.integers(-2, 2**40) | st.sampled_from([True, 1.5, "10"]),
    },
)
items = st.builds(Item, texts | json_values, st.none() | event_fields)
MODES = {
    "sse": "/hostile/yield/?format=sse",
    "ndjson": "/hostile/yield/?format=ndjson",
    "json": "/hostile/yield/?format=json",
    "json-streamed": "/hostile/yield-streamed/?format=json",
}


def refused(item: Item, mode: str) -> bool:
    """Must the view refuse this item? ``Event``'s validation, in every mode; then text UTF-8 cannot carry,
    among what the mode writes (only SSE writes ``event`` and ``id``)."""
    fields = item.fields or {}
    for name in ("event", "id"):
        value = fields.get(name)
        if type(value) is int and name == "id":
            continue
        if value is not None and (not isinstance(value, str) or re.search("[\r\n\0]", value)):
            return True
    retry = fields.get("retry")
    if retry is not None and (type(retry) is not int or retry < 0):
        return True
    try:
        written = [item.data, fields.get("event"), str(fields.get("id"))] if mode == "sse" else item.data
        json.dumps(written, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def sse_text(data: Any) -> str:
    """What an SSE client reads as ``data`` for a yielded value."""
    if isinstance(data, str):
        return re.sub("\r\n|\r", "\n", data)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def check_sse(blocks: list[Block], expected: list[Item], refusal: bool) -> None:
    delivered = blocks[:-1]
    assert len(delivered) == len(expected), f"{len(delivered)} events for {len(expected)} items: {blocks}"
    for block, item in zip(delivered, expected):
        fields = item.fields or {}
        written = {name: None if fields.get(name) is None else str(fields[name]) for name in ("event", "id", "retry")}
        assert (block.event, block.id, block.retry) == (written["event"], written["id"], written["retry"]), block
        if isinstance(item.data, str):
            assert block.text == sse_text(item.data), block
        else:
            assert json.loads(block.text) == item.data, block
    last = blocks[-1]
    if refusal:
        assert last.type == "error" and server_error(json.loads(last.text)), last
    else:
        assert (last.type, last.id, last.text) == ("done", "dualstream-completed", ""), last


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(yielded=st.lists(items, min_size=1, max_size=4), mode=st.sampled_from(sorted(MODES)))
@example(yielded=[Item("\ud800")], mode="sse")
@example(yielded=[Item({"k": "\ud800"})], mode="json")
def test_what_a_producer_yields_arrives_as_yielded_or_is_refused(yielded: list[Item], mode: str) -> None:
    first_refused = next((i for i, item in enumerate(yielded) if refused(item, mode)), None)
    expected = yielded if first_refused is None else yielded[:first_refused]
    token = register(yielded)
    try:
        path, _, query = MODES[mode].partition("?")
        reply = exchange(path, f"{query}&items={token}".encode())
    finally:
        del _registered[token]
    assert reply.complete
    check_headers(reply)
    if reply.status == 500 and (first_refused == 0 or mode == "json"):
        assert first_refused is not None, f"a 500 for items that are all valid: {reply.body[:300]!r}"
        assert dict(reply.headers)[b"content-type"] == b"application/json", (
            f"not the library's error: {reply.body[:300]!r}"
        )
        assert server_error(json.loads(reply.body)), reply.body[:300]
        return
    assert reply.status == 200, f"{reply.status}: {reply.body[:300]!r}"
    data = [item.data for item in expected]
    if mode == "sse":
        check_sse(parse_sse(reply.body, complete=True), expected, first_refused is not None)
    elif mode == "ndjson":
        assert reply.body.endswith(b"\n"), reply.body[-200:]
        lines = [json.loads(line) for line in reply.body.decode("utf-8").split("\n")[:-1]]
        if first_refused is None:
            assert lines == data
        else:
            assert lines[:-1] == data and server_error(lines[-1]), lines
    elif first_refused is None:
        assert json.loads(reply.body) == {"items": data}
    else:
        # Only a streamed batch may start before a refusal: it is left unterminated, so no client takes it for whole.
        assert mode == "json-streamed", f"a 200 for a batch with a refused item: {reply.body[:300]!r}"
        text = reply.body.decode("utf-8")
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
        assert json.loads(text + "]}") == {"items": data}
