"""Which mode a request gets: parameters first, then Accept (with q-values), then the default."""

from __future__ import annotations

import pytest
from django.http import QueryDict

from dualstream import Mode, NegotiationError
from dualstream.negotiation import negotiate, parse_accept

JSON, SSE, NDJSON = Mode.JSON, Mode.SSE, Mode.NDJSON
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("query", "accept", "default", "expected"),
    [
        # explicit parameters win over Accept
        ("stream=true", "application/json", JSON, SSE),
        ("stream=1", "", JSON, SSE),
        ("stream=yes", "", JSON, SSE),
        ("stream=ON", "", JSON, SSE),
        ("stream=false", "text/event-stream", SSE, JSON),
        ("stream=0", "text/event-stream", JSON, JSON),
        ("stream=no", "", SSE, JSON),
        ("stream=off", "application/x-ndjson", JSON, JSON),
        ("format=sse", "application/json", JSON, SSE),
        ("format=json", "text/event-stream", SSE, JSON),
        ("format=ndjson", "text/event-stream", JSON, NDJSON),
        ("format=NDJSON", "", JSON, NDJSON),
        ("stream=1&format=sse", "", JSON, SSE),
        ("stream=1&stream=yes", "", JSON, SSE),
        ("stream=1", "text/event-stream;q=0", JSON, SSE),
        # Accept
        ("", "text/event-stream", JSON, SSE),
        ("", "application/x-ndjson", JSON, NDJSON),
        ("", "application/json", SSE, JSON),
        ("", "TEXT/EVENT-STREAM", JSON, SSE),
        ("", "text/event-stream; charset=utf-8", JSON, SSE),
        ("", "application/json;q=0.5, text/event-stream", JSON, SSE),
        ("", "application/json, text/event-stream;q=0.5", SSE, JSON),
        ("", "text/event-stream, */*;q=0.1", JSON, SSE),
        ("", "text/event-stream, */*", JSON, SSE),  # the exact match beats the wildcard
        ("", "application/json, text/event-stream", SSE, SSE),  # a tie goes to the default
        ("", "application/json, text/event-stream", JSON, JSON),
        ("", "text/*", JSON, SSE),
        ("", "application/*", NDJSON, NDJSON),
        ("", "application/*", SSE, JSON),
        # refusals
        ("", "text/event-stream;q=0", JSON, JSON),
        ("", "text/event-stream;q=0", SSE, JSON),
        ("", "text/event-stream;q=0, application/json;q=0", SSE, NDJSON),
        ("", "*/*, text/event-stream;q=0", SSE, JSON),
        # nothing we serve is named, or the header is garbage: the default
        ("", "", SSE, SSE),
        ("", "*/*", JSON, JSON),
        ("", "*/*", SSE, SSE),
        ("", BROWSER, JSON, JSON),
        ("", "text/html", SSE, SSE),
        ("", "garbage", JSON, JSON),
        ("", ";;;,,,/", SSE, SSE),
        ("", "text/event-stream;q=abc", JSON, JSON),
        ("", "text/event-stream;q=2", JSON, JSON),
        ("", "text/event-stream;q=nan", JSON, JSON),
        ("", "text/event-stream;q=0.001", JSON, SSE),
    ],
)
def test_negotiation_table(query: str, accept: str, default: Mode, expected: Mode) -> None:
    assert negotiate(QueryDict(query), accept, default) is expected


@pytest.mark.parametrize(
    "query",
    [
        "stream=maybe",
        "stream=",
        "stream=2",
        "format=xml",
        "format=",
        "stream=1&format=json",
        "stream=0&format=sse",
        "stream=1&stream=0",
        "stream=true&format=ndjson",
    ],
)
def test_bad_or_conflicting_parameters_are_a_400(query: str) -> None:
    with pytest.raises(NegotiationError) as info:
        negotiate(QueryDict(query), "", Mode.JSON)
    assert info.value.status == 400
    assert str(info.value)


def test_refusing_everything_is_a_406() -> None:
    with pytest.raises(NegotiationError) as info:
        negotiate(QueryDict(""), "*/*;q=0", Mode.JSON)
    assert info.value.status == 406


def test_a_plain_mapping_works_too() -> None:
    assert negotiate({"format": "sse"}, "", Mode.JSON) is Mode.SSE
    assert negotiate({"stream": ["0"]}, "text/event-stream", Mode.SSE) is Mode.JSON


def test_parse_accept_skips_malformed_ranges() -> None:
    assert parse_accept("a/b;q=0.5, nonsense, /x, c/d;level=1, e/f;q=x") == [("a/b", 0.5), ("c/d", 1.0)]


STREAMS = (SSE, NDJSON)


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("", "", SSE),
        ("", "*/*", SSE),
        ("", BROWSER, SSE),
        ("", "text/html", SSE),
        ("", "application/json, application/x-ndjson;q=0.1", NDJSON),  # the one it answers, however low
        ("", "application/*", NDJSON),
        ("", "text/event-stream;q=0", NDJSON),
        ("format=ndjson", "application/json", NDJSON),
    ],
)
def test_a_view_that_answers_some_modes_picks_among_them(query: str, accept: str, expected: Mode) -> None:
    assert negotiate(QueryDict(query), accept, SSE, STREAMS) is expected


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("format=json", ""),
        ("stream=0", "text/event-stream"),
        ("", "application/json"),  # asks only for what the view does not answer
        ("", "text/event-stream;q=0, application/x-ndjson;q=0"),  # refuses all it answers
    ],
)
def test_asking_a_view_for_a_mode_it_does_not_answer_is_a_406_naming_those_it_does(query: str, accept: str) -> None:
    with pytest.raises(NegotiationError) as info:
        negotiate(QueryDict(query), accept, SSE, STREAMS)
    assert info.value.status == 406
    assert info.value.allowed == STREAMS
    assert "sse, ndjson" in str(info.value) or "text/event-stream, application/x-ndjson" in str(info.value)
