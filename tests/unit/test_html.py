"""dualstream.html: Datastar events byte for byte as datastar-py writes them, the html/datastar modes, signals, templates.

``datastar-py`` (pinned in requirements.txt) is the oracle for the Datastar wire format. Streams
that render templates are read from a live uvicorn: tests/e2e/test_html.py.
"""

from __future__ import annotations

import json

import pytest
from datastar_py.consts import ElementPatchMode
from datastar_py.sse import ServerSentEventGenerator as SSE
from django.http import QueryDict
from django.template import Context, Template, TemplateSyntaxError
from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from dualstream import Mode, NegotiationError
from dualstream.encoding import compact_dumps
from dualstream.html import Fragment, Signals, read_signals
from dualstream.negotiation import negotiate
from dualstream.renderers import COMPLETED_ID, DatastarRenderer, HTMLRenderer, NDJSONRenderer, SSERenderer
from tests.support.html_views import DATASTAR_ACCEPT
from tests.support.paths import ROOT

HTMX4_ACCEPT = "text/html, text/event-stream"  # htmx 4 with its hx-sse extension
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
DUMPS = compact_dumps(json.JSONEncoder)


def datastar(item: object) -> str:
    return DatastarRenderer(DUMPS).item(item)


# --- the Datastar wire format, against datastar-py --------------------------------------------------

MODES = [None, *(mode.value for mode in ElementPatchMode)]
# HTML as templates make it: any printable text, lines split by LF, CRLF or CR, often a final newline.
# (datastar-py's str.splitlines() also splits on U+2028, form feeds and such, which SSE does not: left out.)
LINE = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30)
HTML = st.builds(
    lambda lines, sep, end: sep.join(lines) + end,
    st.lists(LINE, max_size=4),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.sampled_from(["", "\n"]),
)
SELECTORS = st.one_of(st.none(), st.sampled_from(["#rows", "body", "ul > li:first-child"]))
IDS = st.one_of(st.none(), st.text("abc123-", min_size=1, max_size=8), st.integers(0, 10**6))


@given(html=HTML, selector=SELECTORS, mode=st.sampled_from(MODES), id=IDS)
def test_a_fragment_is_written_as_datastar_py_patch_elements_writes_it(html, selector, mode, id):
    expected = SSE.patch_elements(html, selector=selector, mode=mode, event_id=None if id is None else str(id))
    assert datastar(Fragment(html, selector=selector, mode=mode, id=id)) == expected


def test_patch_elements_examples_byte_for_byte():
    fragment = Fragment("<li>1</li>\n<li>2</li>\n", selector="#rows", mode="append", id=7)
    assert datastar(fragment) == (
        "event: datastar-patch-elements\nid: 7\ndata: mode append\ndata: selector #rows\n"
        "data: elements <li>1</li>\ndata: elements <li>2</li>\n\n"
    )
    assert datastar(fragment) == SSE.patch_elements("<li>1</li>\n<li>2</li>\n", "#rows", "append", event_id="7")
    assert datastar(Fragment("", selector="#gone", mode="remove")) == SSE.remove_elements("#gone")
    assert datastar(Fragment("<p id=x>x</p>", mode="outer")) == SSE.patch_elements("<p id=x>x</p>")


SIGNAL_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text("abc \"\\\n'<>&é", max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text("abcxyz", min_size=1, max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    values=st.dictionaries(st.text("abcdef", min_size=1, max_size=6), SIGNAL_VALUES, max_size=4),
    only_if_missing=st.booleans(),
    id=IDS,
)
def test_signals_are_written_as_datastar_py_patch_signals_writes_them(values, only_if_missing, id):
    ours = datastar(Signals(values, only_if_missing=only_if_missing, id=id))
    theirs = SSE.patch_signals(values, event_id=None if id is None else str(id), only_if_missing=only_if_missing)
    # datastar-py escapes non-ASCII text (json.dumps' default); the view's encoder writes UTF-8: same JSON.
    ascii = all(ord(c) < 128 for c in json.dumps(values, ensure_ascii=False))
    if ascii:
        assert ours == theirs
    else:
        signals = "data: signals "
        assert [line for line in ours.split("\n") if not line.startswith(signals)] == [
            line for line in theirs.split("\n") if not line.startswith(signals)
        ]
        (line,) = (line for line in ours.split("\n") if line.startswith(signals))
        assert json.loads(line.removeprefix(signals)) == values


def test_datastar_py_events_pass_through_and_plain_values_map_to_patches():
    own = SSE.patch_elements("<div id='x'>X</div>", selector="#x", mode="inner", event_id="d1")
    assert datastar(own) == own
    assert datastar(SSE.patch_signals({"ok": True})) == SSE.patch_signals({"ok": True})
    assert datastar("<p id='c'>C</p>") == SSE.patch_elements("<p id='c'>C</p>")  # an HTML string
    assert datastar({"n": 1}) == SSE.patch_signals({"n": 1})  # a mapping, as Datastar reads a JSON answer


def test_a_datastar_failure_is_an_alert_appended_to_the_body_with_the_end_id():
    text = DatastarRenderer(DUMPS).error({"error": {"status": 500, "message": "<b>bad</b> & worse"}})
    assert text == SSE.patch_elements(
        '<div class="dualstream-error" role="alert" data-status="500">&lt;b&gt;bad&lt;/b&gt; &amp; worse</div>',
        selector="body",
        mode="append",
        event_id=COMPLETED_ID,
    )


def test_fragment_and_signals_validate_their_fields():
    with pytest.raises(ValueError):
        Fragment("<p>", mode="sideways")
    with pytest.raises(ValueError):
        Fragment("<p>", selector="#a\ndata: elements <script>")
    with pytest.raises(ValueError):
        Fragment("<p>", id="1\n2")
    with pytest.raises(TypeError):
        Fragment(42)
    with pytest.raises(TypeError):
        Signals(["not", "a", "mapping"])


# --- the other renderers ---------------------------------------------------------------------------


def test_plain_sse_writes_a_fragments_html_as_data_lines_with_its_event_and_id():
    fragment = Fragment("<li>1</li>\n<li>2</li>", selector="#rows", mode="append", event="row", id="7")
    assert SSERenderer(DUMPS).item(fragment) == "event: row\nid: 7\ndata: <li>1</li>\ndata: <li>2</li>\n\n"
    # Named, so that htmx 2's sse-swap="message" and htmx 4 (which swaps unnamed events) leave it alone.
    assert SSERenderer(DUMPS).item(Signals({"n": 1}, id="s")) == 'event: signals\nid: s\ndata: {"n":1}\n\n'


def test_json_and_ndjson_carry_the_html_as_a_string():
    assert NDJSONRenderer(DUMPS).item(Fragment("<p>a</p>\n")) == '"<p>a</p>\\n"\n'
    assert NDJSONRenderer(DUMPS).item(Signals({"n": 1})) == '{"n":1}\n'


def test_html_renderer_writes_html_and_escapes_anything_else():
    renderer = HTMLRenderer(DUMPS)
    assert renderer.item(Fragment("<p>a</p>")) == "<p>a</p>"
    assert renderer.item("<p>b</p>") == "<p>b</p>"
    assert renderer.item(Signals({"n": 1})) == ""
    assert renderer.item({"x": "<script>"}) == "{&quot;x&quot;:&quot;&lt;script&gt;&quot;}"
    assert 'role="alert"' in renderer.error({"error": {"status": 500, "message": "Internal Server Error"}})


# --- negotiation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accept", "htmx", "datastar", "expected"),
    [
        ("", DATASTAR_ACCEPT, False, True, Mode.DATASTAR),
        ("", "application/json, text/event-stream;q=0.1", False, True, Mode.DATASTAR),  # whatever Accept's order
        ("stream=1", DATASTAR_ACCEPT, False, True, Mode.DATASTAR),
        ("format=sse", "", False, True, Mode.DATASTAR),
        ("format=json", DATASTAR_ACCEPT, False, True, Mode.JSON),  # asked for in so many words
        ("stream=false", DATASTAR_ACCEPT, False, True, Mode.JSON),
        ("format=datastar", "", False, False, Mode.DATASTAR),
        ("", DATASTAR_ACCEPT, False, False, Mode.JSON),  # no Datastar-Request header: equal q, the default, as before
        ("", "*/*", True, False, Mode.HTML),  # htmx 2's hx-get
        ("", "text/html", True, False, Mode.HTML),  # htmx 4's hx-get
        ("", HTMX4_ACCEPT, True, False, Mode.SSE),  # htmx 4 with hx-sse asks for a stream
        ("", "application/x-ndjson", True, False, Mode.NDJSON),
        ("stream=1", "*/*", True, False, Mode.SSE),
        ("format=json", "*/*", True, False, Mode.JSON),
        ("format=html", "", False, False, Mode.HTML),
        ("format=HTML", "text/event-stream", False, False, Mode.HTML),
        ("", BROWSER, False, False, Mode.JSON),  # a browser's navigation still gets the default
        ("", "text/html", False, False, Mode.JSON),
    ],
)
def test_negotiation_of_html_and_datastar(query, accept, htmx, datastar, expected):
    assert negotiate(QueryDict(query), accept, Mode.JSON, htmx=htmx, datastar=datastar) is expected


def test_accept_alone_never_picks_html_or_datastar():
    refusing = "application/json;q=0, text/event-stream;q=0, application/x-ndjson;q=0"
    with pytest.raises(NegotiationError) as refused:
        negotiate(QueryDict(""), refusing, Mode.JSON)
    assert refused.value.status == 406


@pytest.mark.django_db
def test_the_view_reads_the_headers(client):
    ds = client.get("/html/mixed/", headers={"Datastar-Request": "true", "Accept": DATASTAR_ACCEPT})
    assert ds["Content-Type"] == "text/event-stream; charset=utf-8"
    hx = client.get("/html/mixed/", headers={"HX-Request": "true"})
    assert hx["Content-Type"] == "text/html; charset=utf-8"
    assert client.get("/html/mixed/")["Content-Type"] == "application/json"
    assert client.get("/html/mixed/", headers={"Datastar-Request": "false"})["Content-Type"] == "application/json"
    assert client.get("/count/", headers={"Datastar-Request": "true"})["Content-Type"].startswith("text/event-stream")
    # The answer depends on those headers: a shared cache must keep the answers apart.
    assert {"Accept", "HX-Request", "Datastar-Request"} <= {v.strip() for v in hx["Vary"].split(",")}


def test_a_view_without_a_renderer_for_a_mode_refuses_it_and_ignores_the_headers(rf):
    from dualstream import DualModeView
    from dualstream.renderers import SSERenderer as Plain

    class Older(DualModeView):  # a subclass written before the html and datastar modes existed
        renderer_classes = {Mode.SSE: Plain}

        async def produce(self, request):
            yield "x"

    view = Older()
    view.setup(rf.get("/", headers={"Datastar-Request": "true", "HX-Request": "true", "Accept": "text/event-stream"}))
    assert view.mode is Mode.SSE  # as before
    view = Older()
    view.setup(rf.get("/?format=html"))
    assert view._refusal is not None and view._refusal.status == 406


def test_a_completed_stream_is_204_except_for_htmx_which_gets_its_close_event_again(client):
    done = {"Last-Event-ID": COMPLETED_ID}
    assert client.get("/count/?stream=1", headers=done).status_code == 204  # EventSource, htmx 2
    assert client.get("/count/", headers={**done, "Datastar-Request": "true"}).status_code == 204  # Datastar
    htmx4 = client.get("/count/", headers={**done, "HX-Request": "true", "Accept": HTMX4_ACCEPT})
    assert htmx4.status_code == 200 and htmx4["Content-Type"] == "text/event-stream; charset=utf-8"
    assert htmx4.content == f"event: done\nid: {COMPLETED_ID}\nretry: 60000\ndata: \n\n".encode()


# --- signals read from a request -------------------------------------------------------------------


def test_a_form_body_carries_no_signals():
    request = RequestFactory().post("/", {"label": "x"})  # multipart, as Datastar's contentType: 'form' may send
    assert read_signals(request) == {}
    assert request.POST["label"] == "x"


def test_read_signals_bound_is_a_parameter():
    """On GET too (a live test cannot send a 64 KiB query: httpx refuses URLs that long)."""
    request = RequestFactory().get("/", {"datastar": '{"a": "' + "x" * 100 + '"}'})
    assert read_signals(request, max_size=200) == {"a": "x" * 100}
    with pytest.raises(Exception, match="larger than 50 bytes"):
        read_signals(request, max_size=50)


# --- the template tags -----------------------------------------------------------------------------


def render(source: str, **context: object) -> str:
    return Template("{% load dualstream %}" + source).render(Context(context))


def test_tags_write_each_librarys_close_attribute():
    assert render("{% htmx_sse url %}", url="/feed/?a=1&b=2") == (
        'hx-ext="sse" sse-connect="/feed/?a=1&amp;b=2" sse-close="done"'
    )
    assert render("{% htmx_sse '/feed/' version=4 %}") == 'hx-sse:connect="/feed/" hx-sse:close="done"'
    assert render("{% datastar_get url %}", url="/feed/?x='\"") == (
        "@get(&#x27;/feed/?x=\\&#x27;&quot;&#x27;, {retry: &#x27;always&#x27;})"
    )
    assert render("{% datastar_get '/f/' 'post' %}") == "@post(&#x27;/f/&#x27;, {retry: &#x27;always&#x27;})"
    assert render("{% datastar_get '/f/' retry='auto' %}") == "@get(&#x27;/f/&#x27;, {retry: &#x27;auto&#x27;})"
    with pytest.raises(TemplateSyntaxError):
        render("{% htmx_sse '/f/' version=3 %}")
    with pytest.raises(TemplateSyntaxError):
        render("{% datastar_get '/f/' retry='sometimes' %}")


# --- the vendored libraries ------------------------------------------------------------------------


def test_the_vendored_libraries_are_the_files_their_readme_names():
    """static/vendor/README.md pins each library by sha256 (the pages and browser tests load these files)."""
    import hashlib
    import re

    vendor = ROOT / "static" / "vendor"
    pinned = {
        path: digest
        for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", (vendor / "README.md").read_text(), re.M)
    }
    on_disk = {str(p.relative_to(vendor)): hashlib.sha256(p.read_bytes()).hexdigest() for p in vendor.rglob("*.js")}
    assert pinned == on_disk
    for folder in {p.parent for p in vendor.rglob("*.js")}:
        assert (folder / "LICENSE").is_file(), f"{folder.name} has no LICENSE"
