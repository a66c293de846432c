"""dualstream.llm's parts on their own: requests, deltas, the renderer, the demo model, the proxy's parsers.

End-to-end behaviour, through the openai SDK, is in test_llm_live.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from dualstream import Event
from dualstream.llm import ChatCompletionView, ChatRequest, DataOnlySSERenderer, Delta, LLMError, StreamChunk, Usage
from dualstream.llm import Completion, completion_from_chunks, merge_delta, message_text
from dualstream.llm.proxy import pieces_of, sse_data, upstream_error
from project.demo.llm import reply, tokens

USER = {"role": "user", "content": "Hi"}


def parse(body: Any) -> ChatRequest:
    return ChatRequest.parse(json.dumps(body).encode())


# Requests -------------------------------------------------------------------------------------


def test_a_request_keeps_the_fields_it_does_not_parse() -> None:
    body = {"model": "m", "messages": [USER], "stream": True, "stream_options": {"include_usage": True},
            "max_tokens": 9, "temperature": 0.5, "tools": [{"type": "function"}]}
    chat = parse(body)
    assert (chat.model, chat.messages, chat.stream, chat.include_usage, chat.max_tokens, chat.temperature) == (
        "m", [USER], True, True, 9, 0.5,
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
    ],
)
def test_a_bad_request_names_the_parameter(raw: bytes, param: str | None, code: str) -> None:
    with pytest.raises(LLMError) as info:
        ChatRequest.parse(raw)
    error = info.value.body["error"]
    assert (info.value.status, error["param"], error["code"]) == (400, param, code)
    assert error["type"] == "invalid_request_error"


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
        {"tool_calls": [{"index": 0, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{"}},
                        {"index": 1, "id": "b", "type": "function", "function": {"name": "g", "arguments": ""}}]},
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
    chunks = [completion.chunk({"role": "assistant"}), completion.chunk({"content": "a"}),
              completion.chunk({"content": "b"}), completion.chunk({}, "length"), completion.usage_chunk(Usage(1, 2))]
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


# The renderer and StreamChunk -----------------------------------------------------------------


def test_the_data_only_renderer_sends_no_names_or_ids_and_ends_with_done() -> None:
    renderer = DataOnlySSERenderer(json.dumps)
    assert renderer.item(Event({"a": 1}, event="named", id="7", retry=10)) == 'data: {"a": 1}\n\n'
    assert renderer.item("two\nlines") == "data: two\ndata: lines\n\n"
    assert renderer.error({"error": {"message": "x"}}) == 'data: {"error": {"message": "x"}}\n\n'
    assert renderer.end() == "data: [DONE]\n\n"


def test_stream_chunks_join_to_the_whole_answer() -> None:
    pieces = [StreamChunk("r", "Hel"), StreamChunk("r", "lo"), StreamChunk("r", finish_reason="stop")]
    chunks = [piece.as_dict() for piece in pieces]
    assert chunks[0] == {"id": "r", "content": "Hel", "finish_reason": None}
    assert StreamChunk.join(chunks) == {"id": "r", "content": "Hello", "finish_reason": "stop"}


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


def test_the_chat_endpoint_is_exempt_from_csrf_and_post_only() -> None:
    client = Client(enforce_csrf_checks=True)
    body = json.dumps({"model": "any", "messages": [USER], "tokens": 1})
    response = client.post("/llm/scripted/v1/chat/completions", body, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "t0 "
    assert client.get("/llm/scripted/v1/chat/completions").status_code == 405


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


def test_the_demo_reply_is_the_same_in_every_process() -> None:
    # Python randomises str hashes per process: the reply must not depend on them.
    messages = [{"role": "user", "content": "Tell me about tides"}]
    code = f"import django; django.setup(); from project.demo.llm import reply; print(reply({messages!r}))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {reply(messages) + "\n"}


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
            {"index": 0, "delta": {"role": "assistant", "content": "Hi", "refusal": None, "reasoning_content": "r"},
             "finish_reason": None},
            {"index": 1, "delta": {"content": "ignored"}, "finish_reason": None},
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    }
    assert list(pieces_of(chunk)) == [Delta("Hi", None, {"reasoning_content": "r"}), Usage(3, 4)]
    assert list(pieces_of({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})) == [
        Delta(None, "length", {})
    ]


def test_upstream_errors_relay_client_errors_and_hide_credential_failures() -> None:
    relayed = upstream_error(404, {"error": {"message": "No such model.", "type": "invalid_request_error",
                                            "param": "model", "code": "model_not_found"}})
    assert (relayed.status, relayed.message) == (404, "No such model.")
    assert (relayed.param, relayed.code) == ("model", "model_not_found")
    refused = upstream_error(401, {"error": {"message": "Incorrect API key provided: sk-up***"}})
    assert refused.status == 502 and "sk-" not in refused.message
    assert upstream_error(500, None).status == 502
