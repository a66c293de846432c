"""Live HTML over a real uvicorn: templates that touch the ORM lazily, datastar-py's own events, signals.

Only a real ASGI server runs ``produce()`` outside the request's thread, where a lazy queryset would raise.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from datastar_py.sse import ServerSentEventGenerator as SSE

from dualstream.renderers import COMPLETED_ID
from tests.models import Sample
from tests.support.html_views import DATASTAR_ACCEPT


@pytest.mark.django_db(transaction=True)
def test_a_template_touching_a_lazy_queryset_renders_in_every_mode(http):
    taken = datetime(2026, 1, 1, tzinfo=UTC)
    Sample.objects.bulk_create(
        [Sample(sensor="s1", taken_at=taken, value=1.5), Sample(sensor="s2", taken_at=taken, value=2.5)]
    )
    ds = http.get("/html/samples/", headers={"Datastar-Request": "true"})
    assert ds.status_code == 200, ds.text
    assert "data: elements <ul><li>s1 1.5</li><li>s2 2.5</li></ul>" in ds.text
    assert 'name="csrfmiddlewaretoken"' in ds.text and 'value="/html/samples/"' in ds.text  # the request's context
    assert ds.text.startswith("event: datastar-patch-elements\nid: 1\ndata: selector #s\ndata: elements <form")
    html = http.get("/html/samples/?format=html")
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.text.count("<li>s1 1.5</li><li>s2 2.5</li>") == 2
    sse = http.get("/html/samples/?stream=1")
    assert "data: <ul><li>s1 1.5</li><li>s2 2.5</li></ul>" in sse.text
    assert http.get("/html/samples/").json()["items"][0].count("<li>") == 2


def test_datastar_py_events_yielded_from_produce_are_written_as_they_are(http):
    text = http.get("/html/mixed/", headers={"Datastar-Request": "true", "Accept": DATASTAR_ACCEPT}).text
    assert text == (
        SSE.patch_elements("<p id='a'>A</p>\n<p id='b'>B</p>", selector="#list", mode="append", event_id="f1")
        + SSE.patch_signals({"count": 5}, event_id="s1", only_if_missing=True)
        + SSE.patch_elements("<div id='x'>X</div>", selector="#x", mode="inner", event_id="d1")
        + SSE.patch_signals({"ok": True})
        + SSE.patch_elements("<p id='c'>C</p>")
        + f"event: done\nid: {COMPLETED_ID}\ndata: \n\n"
    )


def test_signals_are_read_from_the_query_on_get_and_the_body_otherwise(http):
    ds = {"Datastar-Request": "true"}
    got = http.get("/html/echo/", params={"datastar": '{"a": 1, "b": "x"}'}, headers=ds)
    assert 'data: signals {"a":1,"b":"x"}' in got.text
    posted = http.post("/html/echo/", content='{"c": [1, 2]}', headers={**ds, "Content-Type": "application/json"})
    assert 'data: signals {"c":[1,2]}' in posted.text
    assert "data: signals {}" in http.get("/html/echo/", headers=ds).text


@pytest.mark.parametrize(
    ("method", "payload", "message"),
    [
        ("GET", "{not json", "The Datastar signals are not valid JSON."),
        ("POST", "{not json", "The Datastar signals are not valid JSON."),
        ("POST", b"\xff\xfe", "The Datastar signals are not valid JSON."),
        ("GET", "[1, 2]", "The Datastar signals must be a JSON object."),
        ("POST", '{"big": "' + "x" * 70_000 + '"}', "The Datastar signals are larger than 65536 bytes."),
    ],
)
def test_bad_signals_are_a_json_400(http, method, payload, message):
    headers = {"Datastar-Request": "true"}
    if method == "GET":
        response = http.get("/html/echo/", params={"datastar": payload}, headers=headers)
    else:
        response = http.post("/html/echo/", content=payload, headers=headers)
    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": message}}
