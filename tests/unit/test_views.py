"""DualModeView's logic, through Django's test client (which buffers streams: delivery is tested in test_live.py)."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.test import AsyncClient, Client
from django.test.utils import override_settings

from dualstream import DualModeView, EndReason, stream_finished
from dualstream.lifecycle import Streams
from tests.support.probes import new_probe, tasks_left


def body(response) -> bytes:
    return b"".join(response) if response.streaming else response.content


def test_batch_gathers_every_item_as_one_json_document(client: Client) -> None:
    response = client.get("/count/?n=3")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"items": [{"i": 0}, {"i": 1}, {"i": 2}]}


def test_batch_uses_each_events_data_and_django_json(client: Client) -> None:
    assert client.get("/mixed/").json() == {
        "items": [
            "plain text",
            {"when": "2026-01-02", "amount": "1.50", "id": "12345678-1234-5678-1234-567812345678"},
            "two\nlines",
            {"k": [1, 2]},
            ["a", "b"],
        ]
    }


def test_ndjson_is_one_json_value_per_line(client: Client) -> None:
    response = client.get("/mixed/", HTTP_ACCEPT="application/x-ndjson")
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    lines = body(response).decode().split("\n")
    assert lines[-1] == ""
    assert [json.loads(line) for line in lines[:-1]] == client.get("/mixed/").json()["items"]


def test_streamed_batch_is_the_same_document(client: Client) -> None:
    streamed = client.get("/count-streamed/?n=5")
    assert streamed.streaming
    assert json.loads(body(streamed)) == client.get("/count/?n=5").json()
    assert json.loads(body(client.get("/count-streamed/?n=0"))) == {"items": []}


def test_sse_body_is_exact(client: Client) -> None:
    text = body(client.get("/mixed/?stream=1")).decode()
    assert text == (
        "data: plain text\n\n"
        'data: {"when":"2026-01-02","amount":"1.50","id":"12345678-1234-5678-1234-567812345678"}\n\n'
        "event: progress\nid: 7\nretry: 3000\ndata: two\ndata: lines\n\n"
        'data: {"k":[1,2]}\n\n'
        'data: ["a","b"]\n\n'
        "event: done\nid: dualstream-completed\ndata: \n\n"
    )


@pytest.mark.parametrize(
    "path",
    ["/count/", "/count/?stream=1", "/count/?format=ndjson", "/count/?stream=bad", "/count/?fail=404&stream=1"],
)
def test_every_answer_varies_on_accept(client: Client, path: str) -> None:
    assert "Accept" in client.get(path)["Vary"]  # errors too: their format was chosen by Accept


def test_bad_mode_parameter_is_a_json_400(client: Client) -> None:
    response = client.get("/count/?stream=perhaps")
    assert response.status_code == 400
    assert "stream" in response.json()["error"]["message"]


def test_refusing_every_format_is_a_json_406(client: Client) -> None:
    response = client.get("/count/", HTTP_ACCEPT="*/*;q=0")
    assert response.status_code == 406
    assert response.json()["error"]["status"] == 406


@pytest.mark.parametrize("mode", ["", "stream=1", "format=ndjson"])
@pytest.mark.parametrize(
    ("fail", "status", "message"),
    [
        ("404", 404, "No such thing."),
        ("403", 403, "Not yours."),
        ("400", 400, "Bad thing."),
        ("suspicious", 400, "Bad Request"),
        ("500", 500, "Internal Server Error"),
    ],
)
def test_errors_before_the_first_item_are_ordinary_http_errors(
    client: Client, mode: str, fail: str, status: int, message: str
) -> None:
    response = client.get(f"/count/?fail={fail}&after=0&{mode}")
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": {"status": status, "message": message}}


def test_batch_failure_after_items_is_an_error_not_a_partial_200(client: Client) -> None:
    response = client.get("/count/?n=5&fail=500&after=3")
    assert response.status_code == 500
    assert "items" not in response.json()


def test_internal_details_only_with_debug(client: Client) -> None:
    assert "internal detail" not in client.get("/count/?fail=500").content.decode()
    with override_settings(DEBUG=True):
        error = client.get("/count/?fail=500").json()["error"]
    assert error["message"] == "internal detail 42"
    assert error["type"] == "builtins.RuntimeError"
    assert "Traceback" in error["traceback"]


def test_an_error_before_the_first_item_is_logged_once_with_its_traceback(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        client.get("/count/?fail=500")
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info[1].args == ("internal detail 42",)


def test_an_error_after_the_first_event_is_an_error_event_and_no_done(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.get("/count/?n=5&fail=500&after=2&stream=1")
        assert response.status_code == 200
        text = body(response).decode()
    assert text.count('data: {"i"') == 2
    assert text.endswith('event: error\ndata: {"error":{"status":500,"message":"Internal Server Error"}}\n\n')
    assert "event: done" not in text
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "Error while streaming" in errors[0].getMessage()


def test_an_unserialisable_item_is_an_error_too(client: Client) -> None:
    assert client.get("/bad-item/?first=1&stream=1").status_code == 500
    text = body(client.get("/bad-item/?stream=1")).decode()
    assert text.startswith('data: {"ok":1}\n\n') and "event: error" in text
    assert client.get("/bad-item/").status_code == 500


def test_streamed_batch_failure_leaves_the_document_unterminated(client: Client) -> None:
    text = body(client.get("/count-streamed/?n=5&fail=500&after=2")).decode()
    assert text == '{"items":[{"i":0},{"i":1}'
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_post_runs_the_producer_and_csrf_applies() -> None:
    assert Client().post("/count/?n=2").json() == {"items": [{"i": 0}, {"i": 1}]}
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/count/?n=2").status_code == 403
    assert strict.post("/count-csrf-exempt/?n=2").status_code == 200


def test_other_methods_are_a_json_405_with_allow(client: Client) -> None:
    response = client.put("/count/")
    assert response.status_code == 405
    assert response.json()["error"]["status"] == 405
    assert set(response["Allow"].split(", ")) == {"GET", "POST", "HEAD", "OPTIONS"}


def test_head_primes_without_running_an_endless_producer(client: Client) -> None:
    token, probe = new_probe()
    response = client.head(f"/endless/?stream=1&probe={token}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.content == b""
    # Stopped, having produced no more than the buffer holds.
    assert probe.finished.is_set() and probe.exit in ("cancelled", "closed")
    assert 1 <= probe.produced <= 65536 // len('data: {"i":0,"payload":"xxxxxxxxxx"}\n\n') + 1
    assert client.head("/count/?fail=404").status_code == 404


def test_a_reconnect_after_done_is_told_to_stop(client: Client) -> None:
    response = client.get("/count/?stream=1", HTTP_LAST_EVENT_ID="dualstream-completed")
    assert response.status_code == 204
    assert "Accept" in response["Vary"]
    # Only a stream is told so: a batch request with a stale header is answered as usual.
    assert client.get("/count/", HTTP_LAST_EVENT_ID="dualstream-completed").status_code == 200


def test_last_event_id_from_header_or_query(client: Client) -> None:
    assert client.get("/resumable/", HTTP_LAST_EVENT_ID="6").json() == {"items": [{"i": 7}, {"i": 8}, {"i": 9}]}
    assert client.get("/resumable/?lastEventId=8").json() == {"items": [{"i": 9}]}


def test_default_mode_and_heartbeat_come_from_settings_or_the_view(client: Client) -> None:
    assert client.get("/count-sse/")["Content-Type"].startswith("text/event-stream")
    with override_settings(DUALSTREAM={"DEFAULT_MODE": "ndjson", "HEARTBEAT": 3.0}):
        assert client.get("/count/")["Content-Type"].startswith("application/x-ndjson")
        assert DualModeView.heartbeat == 3.0


def test_a_view_without_an_async_generator_producer_fails_at_startup() -> None:
    class Missing(DualModeView):
        pass

    class NotAGenerator(DualModeView):
        async def produce(self, request):  # type: ignore[override]
            return [1]

    for cls in (Missing, NotAGenerator):
        with pytest.raises(ImproperlyConfigured, match="async generator"):
            cls.as_view()


def test_a_client_error_is_a_warning_without_traceback(client: Client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        client.get("/count/?fail=404")
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelno == logging.WARNING and record.exc_info is None


def test_django_decorators_on_dispatch_work_on_every_python() -> None:
    # method_decorator marks its wrapper with asgiref's markcoroutinefunction, which Python 3.11's
    # inspect.iscoroutinefunction() does not see: the view took dispatch() for sync and every request was a 500.
    strict = Client(enforce_csrf_checks=True)
    for path in ("/count-decorated/?n=2", "/count-decorated/?n=2&format=ndjson"):
        response = strict.post(path)
        assert response.status_code == 200, body(response)
        assert "no-cache" in response["Cache-Control"]  # never_cache ran too
    assert strict.post("/count-decorated/?n=2").json() == {"items": [{"i": 0}, {"i": 1}]}


def test_head_on_a_view_whose_batch_document_does_not_hold_the_items_list(client: Client) -> None:
    # ModelDetailView's document is its one item, not {"items": [...]}: HEAD primed it as a streamed document.
    url = "/llm/auth/v1/models/dualstream-demo"
    headers = {"Authorization": "Bearer sk-test"}
    get = client.get(url, headers=headers)
    assert get.status_code == 200 and get.json()["id"] == "dualstream-demo"
    head = client.head(url, headers=headers)
    assert (head.status_code, head["Content-Type"], head.content) == (200, "application/json", b"")
    assert client.head("/llm/auth/v1/models/nothing", headers=headers).status_code == 404


def test_a_403_under_debug_carries_no_traceback_a_500_does(client: Client) -> None:
    with override_settings(DEBUG=True):
        refused = client.get("/count/?fail=403&stream=1").json()["error"]
        mixin = client.get("/auth/login-required-403/?format=sse").json()["error"]  # LoginRequiredMixin's refusal
        failed = client.get("/count/?fail=500&stream=1").json()["error"]
    assert refused == {"status": 403, "message": "Not yours."}  # the client's error: what the view said, no internals
    assert mixin == {"status": 403, "message": "Forbidden"}  # was 1.7 KB of the mixin's traceback
    assert "Traceback" in failed["traceback"] and failed["type"] == "builtins.RuntimeError"


def test_closing_an_async_client_response_after_breaking_out_of_it_does_not_cancel_the_caller() -> None:
    # StreamResponse.close() -> Pump.interrupt() cancelled the task that last read the body: the test's own.
    token, probe = new_probe()
    ended: list[str] = []

    async def scenario() -> list[asyncio.Task[Any]]:
        finished = asyncio.Event()

        async def on_finished(sender: type, reason: str, request: HttpRequest, **kwargs: Any) -> None:
            if request.GET.get("probe") == token:  # not another test's stream, ending late in the live server
                ended.append(reason)
                finished.set()

        stream_finished.connect(on_finished)
        try:
            response = await AsyncClient().get(f"/endless/?stream=1&probe={token}")
            async for chunk in response.streaming_content:  # type: ignore[attr-defined]
                assert chunk.startswith(b"data: ")
                break
            response.close()
            await asyncio.wait_for(finished.wait(), 5)  # raised CancelledError here
        finally:
            stream_finished.disconnect(on_finished)
        return await tasks_left()

    assert asyncio.run(scenario()) == []
    assert probe.finished.is_set() and probe.exit in ("cancelled", "closed")
    assert ended == ["client_gone"]


def test_a_stream_only_view_refuses_a_batch_with_a_json_406_naming_its_modes(client: Client) -> None:
    token, probe = new_probe()
    for asked in (
        {"path": f"/endless-stream-only/?format=json&probe={token}"},
        {"path": "/count-stream-only/?stream=0"},
    ):
        response = client.get(**asked)
        assert response.status_code == 406
        assert response.json() == {
            "error": {
                "status": 406,
                "message": "This endpoint does not answer json; it answers sse, ndjson.",
                "allowed": ["sse", "ndjson"],
            }
        }
        assert "Accept" in response["Vary"]
    assert not probe.started.is_set()  # refused before produce() ran: an endless batch never answered
    refused = client.get("/count-stream-only/", HTTP_ACCEPT="application/json")
    assert refused.status_code == 406 and refused.json()["error"]["allowed"] == ["sse", "ndjson"]


@pytest.mark.parametrize(
    ("path", "accept", "content_type"),
    [
        ("/count-stream-only/", "", "text/event-stream"),  # default_mode json is not answered: the first mode is
        ("/count-stream-only/", "*/*", "text/event-stream"),
        ("/count-stream-only/", "application/json, application/x-ndjson;q=0.5", "application/x-ndjson"),
        ("/count-stream-only/?format=ndjson", "", "application/x-ndjson"),
        ("/count-batch-only/", "", "application/json"),  # default_mode sse is not answered either
        ("/count-batch-only/", "text/html,*/*;q=0.8", "application/json"),
    ],
)
def test_a_restricted_view_answers_its_modes_its_default_first(
    client: Client, path: str, accept: str, content_type: str
) -> None:
    response = client.get(path, HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


def test_a_batch_only_view_refuses_an_event_source(client: Client) -> None:
    refused = client.get("/count-batch-only/", HTTP_ACCEPT="text/event-stream")  # what EventSource sends
    assert refused.status_code == 406 and refused.json()["error"]["allowed"] == ["json"]
    assert client.get("/count-batch-only/?stream=1").status_code == 406


def test_modes_are_checked_when_the_urlconf_loads() -> None:
    from tests.support.views import CountView

    for modes in ((), ("stream",)):
        with pytest.raises(ImproperlyConfigured, match="modes"):
            CountView.as_view(modes=modes)


def test_max_batch_items_bounds_the_batch_of_an_endless_producer(client: Client) -> None:
    token, probe = new_probe()
    response = client.get(f"/endless-bounded-batch/?probe={token}")
    assert response.status_code == 400
    assert "more than 100 items" in response.json()["error"]["message"]
    assert probe.finished.is_set() and probe.produced == 101  # closed as soon as the limit was passed


def test_a_shutdown_from_another_thread_before_the_producers_first_step_ends_the_stream_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The race of issue 26: end_streams() from another thread lands once the view has registered its
    # stream, before produce() takes a step. The registry knew no loop for the pump yet and skipped it:
    # the stream ran on, endless.
    token, probe = new_probe()
    ended: list[tuple[object, int]] = []

    class EndedOnArrival(Streams):
        def add(self, pump: Any) -> None:
            super().add(pump)
            other = threading.Thread(target=self.end_all)
            other.start()
            other.join()

    registry = EndedOnArrival()
    monkeypatch.setattr("dualstream.respond.streams", registry)

    async def on_finished(sender: type, reason: str, items: int, request: HttpRequest, **kwargs: Any) -> None:
        if request.GET.get("probe") == token:  # not another test's stream, ending late in the live server
            ended.append((reason, items))

    async def scenario() -> tuple[bytes, list[asyncio.Task[Any]]]:
        response = await AsyncClient().get(f"/endless/?stream=1&probe={token}")
        async with asyncio.timeout(10):  # endless, before
            chunks = [chunk async for chunk in response.streaming_content]  # type: ignore[attr-defined]
        response.close()
        return b"".join(chunks), await tasks_left()

    stream_finished.connect(on_finished)
    try:
        content, left = asyncio.run(scenario())
    finally:
        stream_finished.disconnect(on_finished)
    assert content == b"retry: 1000\n"  # the cut, and no item: produce() never ran
    assert left == []
    assert not probe.started.is_set()
    assert ended == [(EndReason.SHUTDOWN, 0)] and isinstance(ended[0][0], EndReason)
    assert len(registry) == 0
