"""``createSSEParser`` from dualstream.js, run in headless Chromium against tricky streams.

Three oracles: hand-written expectations, a literal Python transcription of the WHATWG parsing
rules (whole-stream, not incremental), and Chromium's own ``EventSource`` fed the same bytes.
"""

from __future__ import annotations

import re

import pytest

from tests.support.browser import MODULE_PATH, ORIGIN

# Runs the parser over a list of chunks (strings, or lists of byte values) and returns what it saw.
PARSE_JS = """
async ({ modulePath, chunks }) => {
  const { createSSEParser } = await import(modulePath);
  const events = [];
  const retries = [];
  const parser = createSSEParser((ev) => events.push(ev), { onRetry: (ms) => retries.push(ms) });
  for (const chunk of chunks) parser.feed(typeof chunk === "string" ? chunk : new Uint8Array(chunk));
  parser.end();
  return { events, retries, lastEventId: parser.lastEventId, retry: parser.retry };
}
"""

# Splits ``stream`` at every position (one split: two chunks), or every pair of positions
# (three chunks), and returns the distinct results keyed by JSON, with one example split each.
SPLIT_JS = """
async ({ modulePath, stream, asBytes, pairs }) => {
  const { createSSEParser } = await import(modulePath);
  const input = asBytes ? new TextEncoder().encode(stream) : stream;
  const run = (cuts) => {
    const events = [];
    const parser = createSSEParser((ev) => events.push(ev));
    let at = 0;
    for (const cut of [...cuts, input.length]) { parser.feed(input.slice(at, cut)); at = cut; }
    parser.end();
    return JSON.stringify({ events, lastEventId: parser.lastEventId, retry: parser.retry });
  };
  const seen = new Map();
  let runs = 0;
  const note = (cuts) => { runs++; const key = run(cuts); if (!seen.has(key)) seen.set(key, cuts); };
  for (let i = 0; i <= input.length; i++) {
    if (!pairs) note([i]);
    else for (let j = i; j <= input.length; j++) note([i, j]);
  }
  return { runs, results: [...seen].map(([key, cuts]) => ({ result: JSON.parse(key), cuts })) };
}
"""


@pytest.fixture
def parser_page(dualstream_shared_page):
    """The parser is pure: one page serves the whole module (a fresh one costs ~0.4 s)."""
    return dualstream_shared_page


def reference_parse(stream: str) -> dict:
    """The WHATWG "interpreting an event stream" rules, transcribed literally (BOM already stripped)."""
    events = []
    data, event_type, id_buffer, last_id, retry = "", "", "", "", None
    lines = re.split(r"\r\n|\n|\r", stream)
    # The text after the last line break is an unfinished line: the stream ended, it is discarded.
    for line in lines[:-1]:
        if line == "":
            last_id = id_buffer  # dispatch, step 1: before the check for data
            if data == "":
                event_type = ""
                continue
            data = data.removesuffix("\n")
            events.append({"type": event_type or "message", "data": data, "lastEventId": last_id})
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "event":
            event_type = value
        elif field == "data":
            data += value + "\n"
        elif field == "id":
            if "\0" not in value:
                id_buffer = value
        elif field == "retry" and re.fullmatch(r"[0-9]+", value):
            retry = int(value)
    return {"events": events, "lastEventId": last_id, "retry": retry}


# Every rule at once: CRLF, CR and LF endings, multi-line data, comments, ids with and without
# NUL, retry valid and not, events without data, field names without a colon, unknown fields,
# and multi-byte characters (2, 3 and 4 bytes in UTF-8).
SAMPLE = (
    ": comment, ignored\r\n"
    "retry: 2500\r\n"
    "id: 1\r\n"
    'data: {"n": 1}\r\n'
    "\r\n"
    "event: progress\r"
    "data: first\r"
    "data:second\r"
    "data:  third keeps a space\r"
    "\r"
    "id: bad\0id\n"
    "retry: 12x\n"
    "event: lonely\n"
    "\n"
    "id: 2\n"
    "data\n"
    "\n"
    "bogus: field\n"
    "data: caf\u00e9 \u20ac \U0001f600\r\n"
    "\r\n"
    "event: done\n"
    "data: \n"
    "\n"
    "data: never dispatched"
)

SAMPLE_EXPECTED = {
    "events": [
        {"type": "message", "data": '{"n": 1}', "lastEventId": "1"},
        {"type": "progress", "data": "first\nsecond\n third keeps a space", "lastEventId": "1"},
        {"type": "message", "data": "", "lastEventId": "2"},
        {"type": "message", "data": "caf\u00e9 \u20ac \U0001f600", "lastEventId": "2"},
        {"type": "done", "data": "", "lastEventId": "2"},
    ],
    "lastEventId": "2",
    "retry": 2500,
}


def parse(page, chunks):
    return page.evaluate(PARSE_JS, {"modulePath": MODULE_PATH, "chunks": chunks})


def as_bytes(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def test_reference_parser_agrees_with_the_hand_written_expectation():
    assert reference_parse(SAMPLE) == SAMPLE_EXPECTED


def test_sample_in_one_chunk(parser_page):
    result = parse(parser_page, [SAMPLE])
    assert {k: result[k] for k in ("events", "lastEventId", "retry")} == SAMPLE_EXPECTED
    assert result["retries"] == [2500]


@pytest.mark.parametrize("as_bytes_", [False, True], ids=["text", "bytes"])
def test_every_single_split_position(parser_page, as_bytes_):
    out = parser_page.evaluate(
        SPLIT_JS, {"modulePath": MODULE_PATH, "stream": SAMPLE, "asBytes": as_bytes_, "pairs": False}
    )
    # Text is cut at every UTF-16 code unit, as JS counts: inside a surrogate pair too.
    units = len(SAMPLE.encode()) if as_bytes_ else len(SAMPLE.encode("utf-16-le")) // 2
    assert out["runs"] == units + 1
    assert [r["result"] for r in out["results"]] == [SAMPLE_EXPECTED], out["results"]


def test_every_pair_of_split_positions_in_bytes(parser_page):
    """Three chunks, cut at every pair of byte positions: CRLF pairs and UTF-8 sequences split."""
    out = parser_page.evaluate(SPLIT_JS, {"modulePath": MODULE_PATH, "stream": SAMPLE, "asBytes": True, "pairs": True})
    n = len(SAMPLE.encode())
    assert out["runs"] == (n + 1) * (n + 2) // 2
    assert [r["result"] for r in out["results"]] == [SAMPLE_EXPECTED], out["results"]


def test_crlf_split_across_chunks_is_one_line_break(parser_page):
    # Were the LF taken as a second line break, "a" would be dispatched on its own.
    result = parse(parser_page, ["data: a\r", "\ndata: b\r", "\n\r", "\n"])
    assert result["events"] == [{"type": "message", "data": "a\nb", "lastEventId": ""}]


def test_cr_at_chunk_end_then_cr_is_two_line_breaks(parser_page):
    result = parse(parser_page, ["data: a\r", "\r", "data: b\r", "", "", "\r"])
    assert [e["data"] for e in result["events"]] == ["a", "b"]


def test_lone_cr_then_text_in_next_chunk(parser_page):
    result = parse(parser_page, ["data: a\r", "data: b\r\r"])
    assert [e["data"] for e in result["events"]] == ["a\nb"]


def test_lf_cr_is_two_line_breaks(parser_page):
    result = parse(parser_page, ["data: a\n\rdata: b\n\n"])
    assert [e["data"] for e in result["events"]] == ["a", "b"]


def test_multi_line_data_and_colon_spacing(parser_page):
    stream = "data: one\ndata:two\ndata:  three\ndata\ndata:\ndata: a: b\n\n"
    result = parse(parser_page, [stream])
    assert result["events"] == [{"type": "message", "data": "one\ntwo\n three\n\n\na: b", "lastEventId": ""}]


def test_comments_are_ignored(parser_page):
    stream = ":\n: ping\n:data: not data\ndata: x\n: between\n\n: ping\n\n"
    result = parse(parser_page, [stream])
    assert result["events"] == [{"type": "message", "data": "x", "lastEventId": ""}]


def test_id_with_nul_is_ignored_and_ids_persist(parser_page):
    stream = (
        "id: 7\ndata: a\n\n"
        "id: 8\0\ndata: b\n\n"  # NUL: ignored, the last id stays 7
        "data: c\n\n"  # no id field: the last id carries over
        "id\ndata: d\n\n"  # an empty id resets it
    )
    result = parse(parser_page, [stream])
    assert [(e["data"], e["lastEventId"]) for e in result["events"]] == [("a", "7"), ("b", "7"), ("c", "7"), ("d", "")]


def test_retry_must_be_ascii_digits(parser_page):
    stream = "retry: 1000\nretry: 2s\nretry: -5\nretry: 1.5\nretry:\nretry: \uff11\nretry:  3\ndata: x\n\n"
    result = parse(parser_page, [stream])
    assert result["retries"] == [1000]
    assert result["retry"] == 1000
    result = parse(parser_page, ["retry:0042\n\n"])
    assert result["retry"] == 42


def test_events_without_data_are_not_dispatched(parser_page):
    stream = "event: progress\n\nid: 5\n\nevent: x\nid: 6\nretry: 10\n\ndata: y\n\n"
    result = parse(parser_page, [stream])
    # The type resets with the undispatched event; the id does not.
    assert result["events"] == [{"type": "message", "data": "y", "lastEventId": "6"}]


def test_an_event_cut_before_its_blank_line_leaves_the_resume_point(parser_page):
    """lastEventId is the id as of the last dispatch: the cut event's id would skip it on resume."""
    stream = "id: 1\ndata: a\n\nid: 2\ndata: b"
    result = parse(parser_page, [stream])
    assert result["events"] == [{"type": "message", "data": "a", "lastEventId": "1"}]
    assert result["lastEventId"] == "1"
    # Cut anywhere: the resume point is always the id of the last event delivered.
    whole = as_bytes(stream + "\n\nid: 3\n\ndata: c\n\n")
    for cut in range(len(whole) + 1):
        result = parse(parser_page, [whole[:cut]])
        expected = reference_parse(bytes(whole[:cut]).decode())
        assert result["lastEventId"] == expected["lastEventId"], cut
        assert result["events"] == expected["events"], cut


def test_an_id_in_a_block_without_data_counts_at_its_blank_line(parser_page):
    # The spec sets the last event id string before it checks for data: "id: 3" alone moves it.
    result = parse(parser_page, ["id: 1\ndata: a\n\nid: 3\n\n"])
    assert result["lastEventId"] == "3"
    result = parse(parser_page, ["id: 1\ndata: a\n\nid: 3\n"])
    assert result["lastEventId"] == "1"


def test_event_type_resets_after_dispatch(parser_page):
    result = parse(parser_page, ["event: progress\ndata: 1\n\ndata: 2\n\n"])
    assert [(e["type"], e["data"]) for e in result["events"]] == [("progress", "1"), ("message", "2")]


def test_unfinished_event_is_discarded_at_end(parser_page):
    result = parse(parser_page, ["data: a\n\ndata: b\n"])
    assert [e["data"] for e in result["events"]] == ["a"]
    result = parse(parser_page, ["data: a\n\ndata: b"])
    assert [e["data"] for e in result["events"]] == ["a"]


def test_bom_is_stripped_once_at_start_of_text(parser_page):
    result = parse(parser_page, ["\ufeffdata: a\n\n"])
    assert [e["data"] for e in result["events"]] == ["a"]
    # A BOM in a later chunk, or a second BOM, is text: here it makes the field name unknown.
    result = parse(parser_page, ["", "\ufeff\ufeffdata: a\n\ndata: b\n\n"])
    assert [e["data"] for e in result["events"]] == ["b"]
    result = parse(parser_page, ["data: a\n\n", "\ufeffdata: b\n\n"])
    assert [e["data"] for e in result["events"]] == ["a"]


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_bom_is_stripped_from_bytes_even_when_split(parser_page, cut):
    raw = list(b"\xef\xbb\xbfdata: a\n\n")
    result = parse(parser_page, [raw[:cut], raw[cut:]])
    assert [e["data"] for e in result["events"]] == ["a"]


@pytest.mark.parametrize("text", ["\u00e9", "\u20ac", "\U0001f600", "\u00e9\u20ac\U0001f600\u4e2d"])
def test_multi_byte_characters_split_at_every_byte(parser_page, text):
    raw = as_bytes(f"data: {text}\n\n")
    for cut in range(len(raw) + 1):
        result = parse(parser_page, [raw[:cut], raw[cut:]])
        assert [e["data"] for e in result["events"]] == [text], cut
    one_byte_each = [[b] for b in raw]
    assert [e["data"] for e in parse(parser_page, one_byte_each)["events"]] == [text]


def test_invalid_utf8_becomes_replacement_character(parser_page):
    result = parse(parser_page, [list(b"data: a\xffb\n\n")])
    assert [e["data"] for e in result["events"]] == ["a\ufffdb"]


def test_a_long_line_over_many_chunks(parser_page):
    payload = "x" * 100_000
    chunks = [f"data: {payload}\n\n"[i : i + 997] for i in range(0, len(payload) + 8, 997)]
    result = parse(parser_page, chunks)
    assert [len(e["data"]) for e in result["events"]] == [len(payload)]


@pytest.mark.parametrize(
    "stream",
    [
        SAMPLE,
        "data: a\r\n\r\ndata: b\r\rdata: c\n\n",
        "id: 1\nevent: x\n\nid: 2\0\ndata\n\n:c\ndata:  y\r\n\r\n",
        "\n\n\ndata:\n\ndata: z\ndata\n\nevent: e\ndata: last",
    ],
    ids=["sample", "mixed-endings", "ids", "blank-lines"],
)
def test_matches_the_reference_transcription(parser_page, stream):
    result = parse(parser_page, [stream])
    assert {k: result[k] for k in ("events", "lastEventId", "retry")} == reference_parse(stream)


# Chromium's EventSource parses the same bytes: the two must dispatch the same events.
EVENTSOURCE_JS = """
async ({ url, types }) => new Promise((resolve, reject) => {
  const events = [];
  const es = new EventSource(url);
  const record = (e) => {
    if (e.type === "done") { es.close(); resolve(events); return; }
    events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId });
  };
  es.onmessage = record;
  for (const t of types) es.addEventListener(t, record);
  es.onerror = () => { es.close(); reject(new Error("EventSource failed")); };
  setTimeout(() => { es.close(); reject(new Error("timeout")); }, 5000);
})
"""


def test_agrees_with_chromium_eventsource(parser_page):
    page = parser_page
    body = SAMPLE.encode("utf-8")
    page.route(
        f"{ORIGIN}/native-sse",
        lambda route: route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=body),
    )
    native = page.evaluate(EVENTSOURCE_JS, {"url": "/native-sse", "types": ["progress", "lonely", "done"]})
    ours = parse(page, [as_bytes(SAMPLE)])["events"]
    assert native == [e for e in ours if e["type"] != "done"]
    assert ours[-1]["type"] == "done"
