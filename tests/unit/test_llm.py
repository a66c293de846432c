"""dualstream.llm's parts on their own: requests, deltas, the renderer, the demo model, the proxy's parsers.

End-to-end behaviour, through the openai SDK, is in tests/e2e/test_llm_live.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory

from dualstream import Event
from dualstream.llm import (
    ChatCompletionView,
    ChatRequest,
    Completion,
    DataOnlySSERenderer,
    Delta,
    LLMError,
    Usage,
    completion_from_chunks,
    merge_delta,
    message_text,
)
from dualstream.llm.proxy import ChatCompletionProxyView, pieces_of, sse_data, upstream_error
from project.demo.llm import MODEL, reply, tokens
from tests.support.probes import new_probe

USER = {"role": "user", "content": "Hi"}


def parse(body: Any) -> ChatRequest:
    return ChatRequest.parse(json.dumps(body).encode())


# Requests -------------------------------------------------------------------------------------


def test_a_request_keeps_the_fields_it_does_not_parse() -> None:
    body = {
        "model": "m",
        "messages": [USER],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 9,
        "temperature": 0.5,
        "tools": [{"type": "function"}],
    }
    chat = parse(body)
    assert (chat.model, chat.messages, chat.stream, chat.include_usage, chat.max_tokens, chat.temperature) == (
        "m",
        [USER],
        True,
        True,
        9,
        0.5,
    )
    assert chat.body == body


def test_absent_options_are_none_so_that_negotiation_decides() -> None:
    chat = parse({"model": "m", "messages": [USER]})
    assert (chat.stream, chat.include_usage, chat.max_tokens, chat.temperature) == (None, False, None, None)


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert parse({"model": "m", "messages": [USER], "max_tokens": 9, "max_completion_tokens": 3}).max_tokens == 3


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        (b"{", None, "invalid_json"),
        (b"\xff", None, "invalid_json"),
        (b"[]", None, "invalid_json"),
        (b'{"messages": [{"role": "user"}]}', "model", "missing_required_parameter"),
        (b'{"model": 3, "messages": [{"role": "user"}]}', "model", "invalid_type"),
        (b'{"model": "m"}', "messages", "missing_required_parameter"),
        (b'{"model": "m", "messages": []}', "messages", "empty_array"),
        (b'{"model": "m", "messages": ["Hi"]}', "messages[0]", "invalid_type"),
        (b'{"model": "m", "messages": [{"role": "user"}, {"role": 1}]}', "messages[1].role", "invalid_type"),
        (b'{"model": "m", "messages": [{"role": "user"}], "stream": "yes"}', "stream", "invalid_type"),
        (b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": true}', "max_tokens", "invalid_type"),
        (b'{"model": "m", "messages": [{"role": "user"}], "max_tokens": 2.5}', "max_tokens", "invalid_type"),
        (b'{"model": "m", "messages": [{"role": "user"}], "temperature": -1}', "temperature", "invalid_value"),
        (b'{"model": "m", "messages": [{"role": "user"}], "stream_options": []}', "stream_options", "invalid_type"),
        (b'{"model": "m", "messages": [{"role": "user"}], "n": 2}', "n", "unsupported_value"),
        (b'{"model": "m", "messages": [{"role": "user"}], "n": "1"}', "n", "invalid_type"),
        (b"[" * 5000 + b"]" * 5000, None, "invalid_json"),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": ' + b"[" * 5000 + b"]" * 5000 + b"}]}",
            None,
            "invalid_json",
        ),
    ],
)
def test_a_bad_request_names_the_parameter(raw: bytes, param: str | None, code: str) -> None:
    with pytest.raises(LLMError) as info:
        ChatRequest.parse(raw)
    error = info.value.body["error"]
    assert (info.value.status, error["param"], error["code"]) == (400, param, code)
    assert error["type"] == "invalid_request_error"


def test_n_of_one_is_accepted() -> None:
    assert parse({"model": "m", "messages": [USER], "n": 1}).body["n"] == 1


def test_message_text_reads_strings_and_text_parts() -> None:
    parts = [{"type": "text", "text": "one"}, {"type": "image_url", "image_url": {}}, {"type": "text", "text": "two"}]
    assert message_text({"content": parts}) == "one\ntwo"
    assert message_text({"content": "plain"}) == "plain"
    assert message_text({"role": "assistant", "content": None}) == ""


def test_errors_default_their_type_by_status() -> None:
    assert LLMError(429, "Slow down.").body["error"]["type"] == "invalid_request_error"
    assert LLMError(503, "Busy.").body == {
        "error": {"message": "Busy.", "type": "server_error", "param": None, "code": None}
    }


# Chunks and completions -----------------------------------------------------------------------


def test_chunks_of_one_completion_share_their_identity() -> None:
    completion = Completion("m")
    chunks = [
        completion.chunk({"role": "assistant"}),
        completion.chunk({}, "stop"),
        completion.usage_chunk(Usage(2, 3)),
    ]
    assert {(c["id"], c["created"], c["model"], c["object"]) for c in chunks} == {
        (completion.id, completion.created, "m", "chat.completion.chunk")
    }
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 5
    assert Completion("m").id != completion.id


def test_merging_concatenates_text_but_not_identities() -> None:
    message: dict[str, Any] = {}
    for delta in ({"role": "assistant"}, {"content": "Hel"}, {"role": "assistant", "content": "lo"}):
        merge_delta(message, delta)
    assert message == {"role": "assistant", "content": "Hello"}


def test_merging_joins_tool_call_fragments_by_index() -> None:
    deltas: list[dict[str, Any]] = [
        {
            "tool_calls": [
                {"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{"}},
                {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}},
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}, {"index": 1, "function": {"arguments": "[]"}}]},
    ]
    message: dict[str, Any] = {}
    for delta in deltas:
        merge_delta(message, delta)
    assert [(c["id"], c["function"]["arguments"]) for c in message["tool_calls"]] == [("a", "{}"), ("b", "[]")]
    # The chunks that were merged are left as they were sent.
    assert deltas[0]["tool_calls"][0]["function"]["arguments"] == "{"


def test_a_completion_is_its_chunks_added_up() -> None:
    completion = Completion("m")
    chunks = [
        completion.chunk({"role": "assistant"}),
        completion.chunk({"content": "a"}),
        completion.chunk({"content": "b"}),
        completion.chunk({}, "length"),
        completion.usage_chunk(Usage(1, 2)),
    ]
    document = completion_from_chunks(chunks)
    assert (document["id"], document["created"]) == (completion.id, completion.created)
    assert document["object"] == "chat.completion"
    assert document["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": "ab"}, "logprobs": None, "finish_reason": "length"}
    ]
    assert document["usage"] == Usage(1, 2).as_dict()


def test_a_completion_without_text_has_empty_content_but_null_beside_tool_calls() -> None:
    completion = Completion("m")
    empty = completion_from_chunks([completion.chunk({"role": "assistant"}), completion.chunk({}, "stop")])
    assert empty["choices"][0]["message"]["content"] == ""
    call = {"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    calls = completion_from_chunks([completion.chunk({"role": "assistant"}), completion.chunk(call, "tool_calls")])
    assert calls["choices"][0]["message"]["content"] is None


def test_a_delta_sends_only_what_it_has() -> None:
    assert Delta("hi").fields == {"content": "hi"}
    assert Delta("", extra={"reasoning_content": "hm"}).fields == {"reasoning_content": "hm"}
    assert Delta(finish_reason="stop").fields == {}


# The renderer ---------------------------------------------------------------------------------


def test_the_data_only_renderer_sends_no_names_or_ids_and_ends_with_done() -> None:
    renderer = DataOnlySSERenderer(json.dumps)
    assert renderer.item(Event({"a": 1}, event="named", id="7", retry=10)) == 'data: {"a": 1}\n\n'
    assert renderer.item("two\nlines") == "data: two\ndata: lines\n\n"
    assert renderer.error({"error": {"message": "x"}}) == 'data: {"error": {"message": "x"}}\n\n'
    assert renderer.end() == "data: [DONE]\n\n"


# The views' wiring ----------------------------------------------------------------------------


def test_generate_must_be_an_async_generator() -> None:
    class Forgot(ChatCompletionView):
        pass

    class NotAGenerator(ChatCompletionView):
        async def generate(self, chat: ChatRequest) -> str:  # type: ignore[override]
            return "hi"

    for view in (Forgot, NotAGenerator):
        with pytest.raises(ImproperlyConfigured, match="async generator"):
            view.as_view()


SCRIPTED = "/llm/scripted/v1/chat/completions"
CHAT_BODY = json.dumps({"model": "any", "messages": [USER], "tokens": 1})


def test_the_chat_endpoint_is_post_only() -> None:
    client = Client()
    assert client.post(SCRIPTED, CHAT_BODY, content_type="application/json").status_code == 200
    assert client.get(SCRIPTED).status_code == 405


@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        pytest.param({}, {}, id="no credentials at all: curl"),
        pytest.param({"Authorization": "Bearer sk-any"}, {}, id="a bearer key"),
        pytest.param({"Authorization": "bearer sk-any"}, {"sessionid": "abc"}, id="a bearer key beside cookies"),
    ],
)
def test_api_clients_need_no_csrf_token(headers: dict[str, str], cookies: dict[str, str]) -> None:
    client = Client(enforce_csrf_checks=True, headers=headers)
    client.cookies.load(cookies)
    response = client.post(SCRIPTED, CHAT_BODY, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "t0 "


@pytest.mark.parametrize(
    ("headers", "cookies"),
    [
        pytest.param({}, {"sessionid": "abc"}, id="a session cookie"),
        pytest.param({}, {"anything": "1"}, id="any cookie"),
        pytest.param({"Authorization": "Basic dTpw"}, {}, id="HTTP Basic, which browsers resend"),
    ],
)
def test_ambient_credentials_without_a_csrf_token_are_refused_before_generating(
    headers: dict[str, str], cookies: dict[str, str]
) -> None:
    token, probe = new_probe()
    client = Client(enforce_csrf_checks=True, headers=headers)
    client.cookies.load(cookies)
    body = json.dumps({"model": "any", "messages": [USER], "probe": token})
    response = client.post(SCRIPTED, body, content_type="text/plain")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "csrf_failed")
    assert not probe.started.is_set()


def test_a_cookie_request_with_djangos_csrf_token_is_let_in() -> None:
    client = Client(enforce_csrf_checks=True)
    secret = get_token(RequestFactory().get("/"))  # what a page's {% csrf_token %} hands the browser
    client.cookies.load({"csrftoken": secret})
    response = client.post(SCRIPTED, CHAT_BODY, content_type="application/json", headers={"X-CSRFToken": secret})
    assert response.status_code == 200


@pytest.mark.django_db
def test_a_login_required_chat_view_is_csrf_protected_for_its_session() -> None:
    client = Client(enforce_csrf_checks=True)
    url = "/llm/login/v1/chat/completions"
    assert client.post(url, CHAT_BODY, content_type="text/plain").status_code == 302  # anonymous: to the login page
    client.force_login(User.objects.create_user("alice"))
    forged = client.post(url, CHAT_BODY, content_type="text/plain", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"
    assert "evil" not in forged.content.decode()
    secret = get_token(RequestFactory().get("/"))
    client.cookies.load({"csrftoken": secret})
    allowed = client.post(url, CHAT_BODY, content_type="application/json", headers={"X-CSRFToken": secret})
    assert allowed.status_code == 200


def test_a_form_body_that_passed_the_csrf_check_is_a_400_not_a_500() -> None:
    # Django's check reads a multipart form's csrfmiddlewaretoken, after which the raw body cannot be read.
    client = Client(enforce_csrf_checks=True)
    secret = get_token(RequestFactory().get("/"))
    client.cookies.load({"csrftoken": secret})
    response = client.post(SCRIPTED, {"csrfmiddlewaretoken": secret, "model": "any"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_deep_json_is_a_400_in_openais_shape_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    response = Client().post(SCRIPTED, b"[" * 5000 + b"]" * 5000, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert not [record for record in caplog.records if record.exc_info]


def test_an_unknown_model_is_named_in_the_404_only_by_a_short_prefix() -> None:
    body = json.dumps({"model": "m" * 100_000, "messages": [USER]})
    response = Client().post("/v1/chat/completions", body, content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert len(response.content) < 400


def test_a_model_is_retrieved_as_openais_model_object_or_a_404_in_its_error_shape() -> None:
    client = Client()
    assert client.get(f"/v1/models/{MODEL}").json() == {
        "id": MODEL,
        "object": "model",
        "created": 0,
        "owned_by": "dualstream",
    }
    missing = client.get("/v1/models/org/other-model")
    assert (missing.status_code, missing["Content-Type"]) == (404, "application/json")
    assert missing.json()["error"]["code"] == "model_not_found"


def test_a_body_over_djangos_size_limit_is_a_400_in_openais_shape(settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"model": "any", "stream": True, "messages": [{"role": "user", "content": "x" * 200}]})
    response = Client().post("/llm/scripted/v1/chat/completions", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


# The demo model -------------------------------------------------------------------------------


def test_the_demo_reply_answers_the_prompt_in_a_few_sentences() -> None:
    text = reply([{"role": "user", "content": "Why do volcanoes erupt?"}])
    assert "volcanoes" in text and "erupt" in text
    assert 2 <= text.count(".") + text.count(":") <= 6
    assert "".join(tokens(text)) == text
    assert reply([{"role": "user", "content": "Why do volcanoes erupt?"}]) == text


# The proxy's parsers --------------------------------------------------------------------------


def test_sse_data_joins_data_lines_and_skips_everything_else() -> None:
    async def lines() -> AsyncIterator[str]:
        for line in [": ping", "", "data: one", "data:two", "event: x", "", "id: 3", "", "data: [DONE]"]:
            yield line

    async def collect() -> list[str]:
        return [data async for data in sse_data(lines())]

    assert asyncio.run(collect()) == ["one\ntwo", "[DONE]"]


def test_an_upstream_chunk_becomes_generate_pieces() -> None:
    chunk = {
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "Hi", "refusal": None, "reasoning_content": "r"},
                "finish_reason": None,
            },
            {"index": 1, "delta": {"content": "ignored"}, "finish_reason": None},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    assert pieces_of(json.dumps(chunk)) == [Delta("Hi", None, {"reasoning_content": "r"}), Usage(3, 4)]
    assert pieces_of(json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})) == [
        Delta(None, "length", {})
    ]


def test_upstream_errors_keep_the_status_class_and_log_the_upstreams_text_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "Rate limit reached for org-s3cr3t"
    cases = [(429, 429), (400, 400), (404, 404), (401, 502), (403, 502), (500, 502), (503, 502), (302, 502)]
    for upstream, expected in cases:
        error = upstream_error(upstream, secret)
        assert error.status == expected
        assert "org-" not in error.message and error.code is None and error.param is None
    assert {r.name for r in caplog.records} == {"dualstream.llm"}
    assert all(secret in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "data",
    [
        '{"error": {"message": "org-s3cr3t"}}',
        "not json",
        "[1]",
        '{"choices": [1]}',
        "[" * 5000 + "]" * 5000,
        '{"choices": [], "usage": {"prompt_tokens": "9"}}',
    ],
)
def test_anything_but_a_chunk_from_upstream_is_a_502(data: str) -> None:
    with pytest.raises(LLMError) as info:
        pieces_of(data)
    assert info.value.status == 502 and "org-" not in info.value.message


def test_a_proxy_must_name_its_models() -> None:
    with pytest.raises(ImproperlyConfigured, match="models"):
        ChatCompletionProxyView.as_view()
    assert ChatCompletionProxyView.as_view(models=["m"])


def test_the_proxy_sends_upstream_only_the_allowed_fields_and_the_mapped_model() -> None:
    view = ChatCompletionProxyView(models={"fast": "upstream-mini"})
    body = {
        "model": "fast",
        "messages": [USER],
        "stream": False,
        "n": 1,
        "temperature": 0.5,
        "tools": [],
        "user": "u",
        "store": True,
        "metadata": {},
        "service_tier": "priority",
        "logprobs": True,
        "frobnicate": 1,
    }
    assert view.get_upstream_body(parse(body)) == {
        "model": "upstream-mini",
        "messages": [USER],
        "temperature": 0.5,
        "tools": [],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert ChatCompletionProxyView(models=["same"]).upstream_model("same") == "same"
