"""Event validation, and events as ``SSERenderer`` writes them, checked against a spec-conformant parser (httpx-sse)."""

from __future__ import annotations

import datetime
import decimal
import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given
from hypothesis import strategies as st

from dualstream import Event
from dualstream.encoding import compact_dumps
from dualstream.renderers import JSONArrayRenderer, NDJSONRenderer, SSERenderer

dumps = DjangoJSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
encode = SSERenderer(dumps).item


def parse(text: str, chunk: int | None = None) -> list:
    """Events as a conformant client sees them, optionally fed in chunks of ``chunk`` characters."""
    lines, decoder, events = SSELineDecoder(), SSEDecoder(), []
    pieces = [text] if chunk is None else [text[i : i + chunk] for i in range(0, len(text), chunk)]
    for piece in pieces:
        for line in lines.decode(piece):
            if (event := decoder.decode(line)) is not None:
                events.append(event)
    for line in lines.flush():
        if (event := decoder.decode(line)) is not None:
            events.append(event)
    return events


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "a\nb"}, "event"),
        ({"event": "a\rb"}, "event"),
        ({"event": "a\0b"}, "event"),
        ({"id": "1\n"}, "id"),
        ({"id": "\r"}, "id"),
        ({"id": "1\x002"}, "id"),
        ({"retry": -1}, "retry"),
        ({"retry": 1.5}, "retry"),
        ({"retry": "1000"}, "retry"),
        ({"retry": True}, "retry"),
    ],
)
def test_invalid_fields_are_refused_when_the_event_is_built(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Event("x", **kwargs)


def test_non_string_name_or_id_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        Event("x", id=5.0)  # type: ignore[arg-type]


def test_full_event_encoding_is_exact() -> None:
    text = encode(Event({"n": 1}, event="progress", id="7", retry=3000))
    assert text == 'event: progress\nid: 7\nretry: 3000\ndata: {"n":1}\n\n'


def test_strings_are_text_and_everything_else_json() -> None:
    assert encode("hi") == "data: hi\n\n"
    assert encode('"quoted"') == 'data: "quoted"\n\n'
    assert encode(["a", 1]) == 'data: ["a",1]\n\n'
    assert encode(None) == "data: null\n\n"
    value = {"d": datetime.date(2026, 1, 2), "x": decimal.Decimal("1.5")}
    assert json.loads(encode(value)[len("data: ") : -2]) == {"d": "2026-01-02", "x": "1.5"}


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        ("a\nb", ["a", "b"]),
        ("a\r\nb", ["a", "b"]),
        ("a\rb", ["a", "b"]),
        ("a\n\nb\r\r\n", ["a", "", "b", "", ""]),
        ("", [""]),
    ],
)
def test_data_is_split_on_every_line_break(data: str, lines: list[str]) -> None:
    assert encode(data) == "".join(f"data: {line}\n" for line in lines) + "\n"


def test_empty_data_still_dispatches_an_event() -> None:
    (event,) = parse(encode(Event("")))
    assert event.data == ""


def test_no_bom_is_written_even_for_data_that_starts_with_one() -> None:
    text = encode(Event("\ufeffhello"))
    assert text.startswith("data: ")
    assert parse(text)[0].data == "\ufeffhello"


def normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


field_text = st.text().filter(lambda s: not any(c in s for c in "\r\n\0"))


@given(data=st.text(), event=st.none() | field_text.filter(bool), id=st.none() | field_text)
def test_any_string_round_trips_through_a_conformant_parser(data: str, event: str | None, id: str | None) -> None:
    (parsed,) = parse(encode(Event(data, event=event, id=id)))
    assert parsed.data == normalise(data)
    assert parsed.event == (event or "message")
    if id is not None:
        assert parsed.id == id


@given(
    items=st.lists(st.text() | st.dictionaries(st.text(), st.integers()), min_size=1, max_size=5),
    chunk=st.integers(1, 7),
)
def test_a_stream_of_events_parses_back_in_any_chunking(items: list, chunk: int) -> None:
    text = "".join(encode(Event(item)) for item in items)
    parsed = [e.data for e in parse(text, chunk)]
    assert parsed == [normalise(i) if isinstance(i, str) else dumps(i) for i in items]


@pytest.mark.parametrize("key", [0, 7, 2**70])
@pytest.mark.parametrize("data", [{"a": 1}, "two\nlines", ""])
def test_an_int_id_is_written_as_its_decimal_text(key: int, data: object) -> None:
    encode = SSERenderer(compact_dumps(DjangoJSONEncoder)).item
    assert encode(Event(data, id=key)) == encode(Event(data, id=str(key)))


@pytest.mark.parametrize("key", [True, 1.5, b"7"])
def test_an_id_that_is_neither_str_nor_int_is_refused(key: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        Event({}, id=key)  # type: ignore[arg-type]


def test_an_event_from_json_text_carries_the_decoded_value_and_is_written_as_the_text() -> None:
    text = '{"b":1,"a":[1.50,"\\u00e9"]}'  # not as json.dumps() would write it: the text itself is sent
    event = Event.from_json(text, id="1-0")
    assert event == Event({"b": 1, "a": [1.5, "é"]}, id="1-0")
    assert encode(event) == f"id: 1-0\ndata: {text}\n\n"
    assert NDJSONRenderer(dumps).item(event) == text + "\n"
    document = JSONArrayRenderer(dumps)
    assert document.start() + document.item(event) + document.item(event) + document.end() == (
        f'{{"items":[{text},{text}]}}'
    )


def test_json_text_laid_out_on_several_lines_stays_one_line_in_ndjson_and_valid_sse() -> None:
    event = Event.from_json('{\n  "a": 1\r\n}')
    assert NDJSONRenderer(dumps).item(event) == '{"a":1}\n'
    (parsed,) = parse(encode(event))
    assert json.loads(parsed.data) == {"a": 1}


def test_a_string_from_json_is_sent_as_text_in_sse_as_any_string() -> None:
    event = Event.from_json('"two\\nlines"')
    assert event.data == "two\nlines"
    assert encode(event) == encode(Event("two\nlines")) == "data: two\ndata: lines\n\n"
    assert NDJSONRenderer(dumps).item(event) == '"two\\nlines"\n'


def test_invalid_json_text_is_refused_when_the_event_is_built() -> None:
    with pytest.raises(ValueError):
        Event.from_json("{not json")
