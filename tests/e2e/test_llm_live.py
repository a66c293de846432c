"""The OpenAI-compatible endpoints, end to end: the official ``openai`` SDK and raw httpx against a live uvicorn."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from django.contrib.auth.models import User
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory
from openai import AsyncOpenAI, OpenAI

from project.demo.llm import MODEL, reply, tokens
from tests.support.llm_urls import API_KEY, PROXY_KEY, PROXY_MODELS
from tests.support.llm_views import TOOL_CALL_FRAGMENTS, UPSTREAM_SECRET
from tests.support.probes import new_probe

pytestmark = pytest.mark.usefixtures("fast_demo_model")

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "How do rivers carve canyons through solid rock?"},
]


def sdk(base_url: str, api_key: str = "unused") -> OpenAI:
    # No retries: a 5xx must surface at once, not after backoff.
    return OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=10)


@pytest.fixture
def openai_client(live_url: str) -> Iterator[OpenAI]:
    """The OpenAI SDK, on the demo model."""
    with sdk(f"{live_url}/v1") as client:
        yield client


@pytest.fixture
def scripted(live_url: str) -> Iterator[OpenAI]:
    """A client of ScriptedChatView, steered by extra body fields."""
    with sdk(f"{live_url}/llm/scripted/v1") as client:
        yield client


def stream_chunks(client: OpenAI, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("messages", MESSAGES)
    return list(client.chat.completions.create(stream=True, **kwargs))


def joined(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# The demo endpoint, through the SDK ------------------------------------------------------------


def test_models_list_and_retrieve(openai_client: OpenAI) -> None:
    assert [m.id for m in openai_client.models.list()] == [MODEL]
    model = openai_client.models.retrieve(MODEL)
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "dualstream")
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.models.retrieve("gpt-nothing")
    assert info.value.code == "model_not_found"


def test_models_retrieve_checks_the_key(live_url: str) -> None:
    with sdk(f"{live_url}/llm/auth/v1", api_key=API_KEY) as client:
        assert client.models.retrieve(MODEL).id == MODEL
    with sdk(f"{live_url}/llm/auth/v1", api_key="sk-wrong") as client, pytest.raises(openai.AuthenticationError):
        client.models.retrieve(MODEL)


def test_a_batch_completion_is_the_demo_models_reply(openai_client: OpenAI) -> None:
    completion = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    expected = reply(MESSAGES)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.completion_tokens == len(tokens(expected))
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_streamed_deltas_join_to_exactly_the_batch_content(openai_client: OpenAI) -> None:
    chunks = stream_chunks(openai_client)
    batch = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert joined(chunks) == batch.choices[0].message.content
    assert len({c.id for c in chunks}) == 1 and len({c.created for c in chunks}) == 1
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    first, *middle, last = chunks
    assert (first.choices[0].delta.role, first.choices[0].delta.content) == ("assistant", None)
    assert all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in middle)
    assert (last.choices[0].delta.content, last.choices[0].finish_reason) == (None, "stop")
    assert all(c.usage is None for c in chunks)


def test_include_usage_adds_a_usage_chunk_without_choices(openai_client: OpenAI) -> None:
    chunks = stream_chunks(openai_client, stream_options={"include_usage": True})
    *answer, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert usage_chunk.id == answer[0].id
    content_chunks = [c for c in answer if c.choices[0].delta.content]
    assert usage_chunk.usage.completion_tokens == len(content_chunks)
    batch = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert usage_chunk.usage == batch.usage


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_a_token_limit_cuts_the_answer_with_finish_reason_length(openai_client: OpenAI, limit: str) -> None:
    chunks = stream_chunks(openai_client, **{limit: 4})
    batch = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES, **{limit: 4})
    expected = "".join(tokens(reply(MESSAGES))[:4])
    assert joined(chunks) == batch.choices[0].message.content == expected
    assert chunks[-1].choices[0].finish_reason == batch.choices[0].finish_reason == "length"
    assert batch.usage.completion_tokens == 4


def test_the_same_conversation_gets_the_same_answer_and_another_does_not(openai_client: OpenAI) -> None:
    other = [{"role": "user", "content": "Why is the sky blue at noon?"}]
    answers = [
        openai_client.chat.completions.create(model=MODEL, messages=m).choices[0].message.content
        for m in (MESSAGES, MESSAGES, other)
    ]
    assert answers[0] == answers[1] != answers[2]
    assert "sky" in answers[2]


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "Hi"}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 7}]}, "messages[0].content"),
        ({"max_tokens": "ten"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 9}, "temperature"),
        ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ],
)
def test_bad_input_is_a_bad_request_error_naming_the_parameter(openai_client: OpenAI, kwargs: dict, param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(**{"model": MODEL, "messages": MESSAGES, **kwargs})
    assert info.value.status_code == 400
    assert info.value.param == param
    assert info.value.type == "invalid_request_error"


def test_unknown_fields_are_ignored(openai_client: OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_body={"frobnicate": True, "n": 1, "stop": ["x"]}
    )
    assert completion.choices[0].message.content == reply(MESSAGES)


def test_n_other_than_one_is_refused(openai_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=MODEL, messages=MESSAGES, n=2)
    assert (info.value.param, info.value.code) == ("n", "unsupported_value")


def test_an_unknown_model_is_not_found(openai_client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(model="gpt-nothing", messages=MESSAGES)
    assert (info.value.param, info.value.code) == ("model", "model_not_found")


def test_async_client_streams_and_lists_models(live_url: str) -> None:
    async def main() -> tuple[list[str], str, str]:
        async with AsyncOpenAI(base_url=f"{live_url}/v1", api_key="unused", max_retries=0) as client:
            models = [m.id async for m in client.models.list()]
            stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            streamed = "".join([c.choices[0].delta.content or "" async for c in stream])
            batch = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
            return models, streamed, batch.choices[0].message.content

    models, streamed, batched = asyncio.run(main())
    assert models == [MODEL]
    assert streamed == batched == reply(MESSAGES)


def test_tokens_arrive_as_they_are_generated(openai_client: OpenAI, settings) -> None:
    delay, count = 0.05, 8
    settings.DEMO_LLM_TOKEN_DELAY = delay
    arrivals = [
        time.monotonic()
        for chunk in openai_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, max_tokens=count, stream=True
        )
        if chunk.choices[0].delta.content
    ]
    assert len(arrivals) == count
    # Generating takes (count - 1) * delay between the first token and the last; a buffered answer would arrive at once.
    assert arrivals[-1] - arrivals[0] > (count - 1) * delay / 2


def test_each_token_arrives_before_the_next_is_generated(scripted: OpenAI) -> None:
    token, probe = new_probe()
    stream = scripted.chat.completions.create(
        model="any", messages=MESSAGES, stream=True, extra_body={"probe": token, "tokens": 5, "delay": 0.1}
    )
    arrivals = [time.monotonic() for chunk in stream if chunk.choices[0].delta.content]
    assert len(arrivals) == len(probe.produced_at) == 5
    for arrived, next_generated in zip(arrivals, probe.produced_at[1:]):
        assert arrived < next_generated


# Keys ------------------------------------------------------------------------------------------


def test_a_wrong_key_is_an_authentication_error(live_url: str) -> None:
    with sdk(f"{live_url}/llm/auth/v1", api_key="sk-wrong") as client:
        with pytest.raises(openai.AuthenticationError) as info:
            client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert info.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            client.models.list()


def test_the_right_key_is_let_in(live_url: str) -> None:
    with sdk(f"{live_url}/llm/auth/v1", api_key=API_KEY) as client:
        assert [m.id for m in client.models.list()] == [MODEL]
        assert joined(stream_chunks(client)) == reply(MESSAGES)


def test_no_key_is_a_401_in_openais_shape(http: httpx.Client) -> None:
    response = http.post("/llm/auth/v1/chat/completions", json={"model": MODEL, "messages": MESSAGES})
    assert response.status_code == 401
    assert response.json()["error"].keys() == {"message", "type", "param", "code"}


# Failures while generating ----------------------------------------------------------------------


def test_a_failure_mid_stream_raises_in_the_sdk_after_the_tokens_before_it(scripted: OpenAI) -> None:
    received = []
    stream = scripted.chat.completions.create(
        model="any", messages=MESSAGES, stream=True, extra_body={"tokens": 5, "fail_after": 2}
    )
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == [None, "t0 ", "t1 "]
    assert "internal detail" not in info.value.message
    assert info.value.body["type"] == "server_error"


def test_a_failure_in_batch_mode_is_a_500_in_openais_shape(scripted: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        scripted.chat.completions.create(model="any", messages=MESSAGES, extra_body={"tokens": 5, "fail_after": 2})
    assert info.value.status_code == 500
    assert info.value.type == "server_error"
    assert "internal detail" not in info.value.message


def test_a_failure_before_the_first_token_is_an_http_error_even_when_streaming(scripted: OpenAI) -> None:
    with pytest.raises(openai.InternalServerError):
        scripted.chat.completions.create(model="any", messages=MESSAGES, stream=True, extra_body={"fail_after": 0})


def test_a_client_that_closes_the_stream_early_cancels_the_generator(scripted: OpenAI) -> None:
    token, probe = new_probe()
    stream = scripted.chat.completions.create(
        model="any", messages=MESSAGES, stream=True, extra_body={"probe": token, "tokens": None, "delay": 0.01}
    )
    for _ in zip(range(3), stream):
        pass
    stream.close()
    assert probe.finished.wait(5), "generate()'s finally did not run"
    assert probe.exit in ("cancelled", "closed")
    # The server goes on serving.
    assert joined(stream_chunks(scripted, model="any", extra_body={"tokens": 2})) == "t0 t1 "


def test_an_async_client_that_leaves_early_cancels_the_generator(live_url: str) -> None:
    token, probe = new_probe()

    async def main() -> None:
        async with AsyncOpenAI(base_url=f"{live_url}/llm/scripted/v1", api_key="unused", max_retries=0) as client:
            stream = await client.chat.completions.create(
                model="any",
                messages=MESSAGES,
                stream=True,
                extra_body={"probe": token, "tokens": None, "delay": 0.01},
            )
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    break
            await stream.close()

    asyncio.run(main())
    assert probe.finished.wait(5), "generate()'s finally did not run"
    assert probe.exit in ("cancelled", "closed")


# Richer deltas ---------------------------------------------------------------------------------


def test_richer_deltas_merge_into_the_batch_message_as_the_sdk_merges_the_stream(
    live_url: str, http: httpx.Client
) -> None:
    with sdk(f"{live_url}/llm/tools/v1") as client:
        with client.chat.completions.stream(model="any", messages=MESSAGES) as stream:
            chunks = [event.chunk for event in stream if event.type == "chunk"]
            streamed = stream.get_final_completion()
        batch = client.chat.completions.create(model="any", messages=MESSAGES)
    streamed_message, batch_message = streamed.choices[0].message, batch.choices[0].message
    assert batch_message.content == streamed_message.content == "Let me check."
    calls = [
        [(c.id, c.type, c.function.name, c.function.arguments) for c in message.tool_calls]
        for message in (batch_message, streamed_message)
    ]
    assert calls[0] == calls[1] == [("call_1", "function", "weather", "".join(TOOL_CALL_FRAGMENTS))]
    assert batch.choices[0].finish_reason == streamed.choices[0].finish_reason == "tool_calls"
    reasoning = "".join(
        (chunk.choices[0].delta.model_extra or {}).get("reasoning_content", "") for chunk in chunks if chunk.choices
    )
    raw = http.post("/llm/tools/v1/chat/completions", json={"model": "any", "messages": MESSAGES}).json()
    assert raw["choices"][0]["message"]["reasoning_content"] == reasoning
    assert raw["usage"] == {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


# The wire, read with httpx ---------------------------------------------------------------------


def test_the_stream_is_data_only_server_sent_events_ending_with_done(http: httpx.Client) -> None:
    body = {"model": MODEL, "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        text = response.read().decode()
    assert text.endswith("\n\ndata: [DONE]\n\n")
    blocks = text.removesuffix("\n\n").split("\n\n")
    for block in blocks:
        for line in block.split("\n"):
            assert line.startswith(("data: ", ":")), line  # no event:, id: or retry: lines
    data = [json.loads(b.removeprefix("data: ")) for b in blocks[:-1] if b.startswith("data: ")]
    assert [d["object"] for d in data] == ["chat.completion.chunk"] * len(data)
    assert data[-1]["choices"] == [] and data[-1]["usage"]["completion_tokens"] == len(data) - 3


def test_a_failure_on_the_wire_is_a_data_error_without_done(http: httpx.Client) -> None:
    body = {"model": "any", "messages": MESSAGES, "stream": True, "tokens": 3, "fail_after": 1}
    text = http.post("/llm/scripted/v1/chat/completions", json=body).text
    last = text.removesuffix("\n\n").split("\n\n")[-1]
    assert json.loads(last.removeprefix("data: "))["error"]["type"] == "server_error"
    assert "[DONE]" not in text and "event:" not in text


def test_malformed_json_is_a_400_in_openais_shape(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_json_nested_5000_deep_is_a_400_in_openais_shape_and_logs_no_traceback(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    deep = b'{"model": "m", "messages": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = http.post("/v1/chat/completions", content=deep, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert not [record for record in caplog.records if record.exc_info]


def test_missing_messages_is_a_400(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={"model": MODEL})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


def test_the_bodys_stream_flag_beats_accept_and_without_it_accept_decides(http: httpx.Client) -> None:
    sse = {"Accept": "text/event-stream"}
    body = {"model": MODEL, "messages": MESSAGES}
    as_json = http.post("/v1/chat/completions", json={**body, "stream": False}, headers=sse)
    assert as_json.headers["content-type"] == "application/json"
    as_sse = http.post("/v1/chat/completions", json=body, headers=sse)
    assert as_sse.headers["content-type"].startswith("text/event-stream")
    assert as_sse.text.endswith("data: [DONE]\n\n")


def test_a_refused_negotiation_is_an_error_in_openais_shape(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions?stream=maybe", json={"model": MODEL, "messages": MESSAGES})
    assert response.status_code == 400
    assert response.json()["error"].keys() == {"message", "type", "param", "code"}


def test_a_view_outside_openais_format_streams_data_and_done(http: httpx.Client) -> None:
    streamed = http.get("/llm/data-only/?q=one two three&stream=1").text
    assert (
        streamed
        == 'data: {"content":"one "}\n\ndata: {"content":"two "}\n\ndata: {"content":"three "}\n\ndata: [DONE]\n\n'
    )
    assert http.get("/llm/data-only/?q=one two three").json() == {"content": "one two three "}


# CSRF where a cookie authenticates -------------------------------------------------------------


@pytest.fixture
def session_cookie(transactional_db: None) -> str:
    """The session cookie of a logged-in user, as the victim's browser holds it; the live server shares the database."""
    client = Client()
    client.force_login(User.objects.create_user("alice"))
    return client.cookies["sessionid"].value


def test_a_cross_site_post_with_the_victims_session_is_refused(http: httpx.Client, session_cookie: str) -> None:
    url, body = "/llm/login/v1/chat/completions", json.dumps({"model": "any", "messages": MESSAGES})
    forged = http.post(
        url,
        content=body,
        headers={
            "Content-Type": "text/plain",
            "Origin": "https://evil.example",
            "Cookie": f"sessionid={session_cookie}",
        },
    )
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "csrf_failed"
    anonymous = http.post(url, content=body, headers={"Content-Type": "text/plain"})
    assert anonymous.status_code == 302  # login_required, as Django does it


def test_the_same_session_with_djangos_csrf_token_or_a_bearer_key_is_let_in(
    http: httpx.Client, session_cookie: str
) -> None:
    url, body = "/llm/login/v1/chat/completions", {"model": "any", "messages": MESSAGES, "tokens": 2}
    secret = get_token(RequestFactory().get("/"))
    with_token = http.post(
        url, json=body, headers={"Cookie": f"sessionid={session_cookie}; csrftoken={secret}", "X-CSRFToken": secret}
    )
    assert with_token.status_code == 200
    assert with_token.json()["choices"][0]["message"]["content"] == "t0 t1 "
    with_key = http.post(
        url, json=body, headers={"Cookie": f"sessionid={session_cookie}", "Authorization": "Bearer sk-any"}
    )
    assert with_key.status_code == 200


# The proxy, with the live server as its own upstream ------------------------------------------


@pytest.fixture
def proxy_client(live_url: str, settings) -> Iterator[OpenAI]:
    """A client of the proxy, whose upstream is the demo model behind a key of its own."""
    settings.DUALSTREAM = {"LLM": {"UPSTREAM_URL": f"{live_url}/llm/auth/v1", "UPSTREAM_API_KEY": API_KEY}}
    with sdk(f"{live_url}/llm/proxy/v1", api_key=PROXY_KEY) as client:
        yield client


@pytest.fixture
def upstream(live_url: str, settings):
    """Points the proxy at a scripted upstream (tests/support/llm_views.py's UPSTREAM_SCRIPTS), by script name."""

    def use(script: str) -> None:
        settings.DUALSTREAM = {
            "LLM": {"UPSTREAM_URL": f"{live_url}/llm/upstream/{script}/v1", "UPSTREAM_API_KEY": "sk-up"}
        }

    return use


def test_the_proxy_streams_and_batches_the_upstreams_answer(proxy_client: OpenAI, openai_client: OpenAI) -> None:
    direct = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    chunks = stream_chunks(proxy_client, stream_options={"include_usage": True})
    batch = proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert joined(chunks) == batch.choices[0].message.content == direct.choices[0].message.content
    assert chunks[-1].usage == batch.usage == direct.usage  # the upstream's own counts
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_the_proxy_passes_limits_and_finish_reasons_through(proxy_client: OpenAI, openai_client: OpenAI) -> None:
    direct = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=3)
    proxied = proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=3)
    assert proxied.choices[0].message.content == direct.choices[0].message.content
    assert proxied.choices[0].finish_reason == direct.choices[0].finish_reason == "length"


def test_the_proxy_maps_model_names_and_answers_with_the_clients_name(proxy_client: OpenAI) -> None:
    answer = proxy_client.chat.completions.create(model="alias", messages=MESSAGES)  # the upstream's MODEL
    assert answer.choices[0].message.content == reply(MESSAGES)
    assert answer.model == "alias"
    assert [m.id for m in proxy_client.models.list()] == list(PROXY_MODELS)


def test_the_proxy_refuses_what_it_does_not_support_before_calling_upstream(proxy_client: OpenAI, upstream) -> None:
    upstream("server-error")  # a request that went upstream would be a 502
    with pytest.raises(openai.NotFoundError) as info:
        proxy_client.chat.completions.create(model="gpt-4-expensive", messages=MESSAGES)
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as info:
        proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES, n=3)
    assert info.value.param == "n"


def test_the_proxy_forwards_only_the_allowed_fields_with_its_own_key(proxy_client: OpenAI, upstream) -> None:
    upstream("echo")
    answer = proxy_client.chat.completions.create(
        model="alias",
        messages=MESSAGES,
        temperature=0.5,
        stop=["x"],
        n=1,
        user="u-1",
        store=True,
        metadata={"k": "v"},
        service_tier="priority",
        logprobs=True,
        extra_body={"frobnicate": 1},
    )
    sent = json.loads(answer.choices[0].message.content)
    assert sent["authorization"] == "Bearer sk-up"  # the proxy's upstream key, never the client's
    assert sent["body"] == {
        "model": MODEL,
        "messages": MESSAGES,
        "temperature": 0.5,
        "stop": ["x"],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_the_proxy_has_its_own_keys(proxy_client: OpenAI, live_url: str) -> None:
    with sdk(f"{live_url}/llm/proxy/v1", api_key=API_KEY) as client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # the upstream's key is not the proxy's


@pytest.mark.parametrize(
    ("script", "error", "status"),
    [
        ("rate-limited", openai.RateLimitError, 429),
        ("bad-request", openai.BadRequestError, 400),
        ("server-error", openai.InternalServerError, 502),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_error_keeps_its_status_and_its_text_stays_in_the_servers_log(
    proxy_client: OpenAI,
    upstream,
    caplog: pytest.LogCaptureFixture,
    script: str,
    error: type,
    status: int,
    stream: bool,
) -> None:
    upstream(script)
    with pytest.raises(error) as info:
        proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
    assert info.value.status_code == status
    assert UPSTREAM_SECRET not in json.dumps(info.value.body) and UPSTREAM_SECRET not in info.value.message
    assert any(UPSTREAM_SECRET in r.getMessage() for r in caplog.records if r.name == "dualstream.llm")


def test_an_upstream_missing_a_mapped_model_is_a_generic_404(proxy_client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        proxy_client.chat.completions.create(model="missing", messages=MESSAGES)  # "gpt-nothing" upstream
    assert "gpt-nothing" not in info.value.message


def test_the_proxy_answers_502_when_the_upstream_refuses_its_key(proxy_client: OpenAI, settings) -> None:
    settings.DUALSTREAM = {"LLM": {**settings.DUALSTREAM["LLM"], "UPSTREAM_API_KEY": "sk-wrong"}}
    with pytest.raises(openai.InternalServerError) as info:
        proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert info.value.status_code == 502
    assert "sk-" not in info.value.message


def test_the_proxy_answers_502_when_the_upstream_is_unreachable(proxy_client: OpenAI, settings) -> None:
    settings.DUALSTREAM = {"LLM": {"UPSTREAM_URL": "http://127.0.0.1:9/v1"}}  # the discard port: nothing listens
    with pytest.raises(openai.InternalServerError) as info:
        proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert info.value.status_code == 502


@pytest.mark.parametrize("script", ["error-mid-stream", "deep-json", "not-a-chunk", "bad-usage"])
def test_a_broken_upstream_stream_is_an_error_after_the_tokens_before_it(
    proxy_client: OpenAI, upstream, caplog: pytest.LogCaptureFixture, script: str
) -> None:
    upstream(script)
    stream = proxy_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == [None, "fine "]
    assert UPSTREAM_SECRET not in info.value.message
    assert not [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RecursionError)]


def test_a_lone_surrogate_from_upstream_mid_stream_is_an_error_event(http: httpx.Client, upstream) -> None:
    upstream("surrogate-mid-stream")
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    response = http.post("/llm/proxy/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {PROXY_KEY}"})
    assert response.status_code == 200
    blocks = response.text.removesuffix("\n\n").split("\n\n")
    data = [json.loads(block.removeprefix("data: ")) for block in blocks if block.startswith("data: ")]
    assert [d["choices"][0]["delta"].get("content") for d in data[:-1]] == [None, "fine "]
    assert data[-1]["error"]["type"] == "server_error"
    assert "[DONE]" not in response.text


@pytest.mark.parametrize("script", ["surrogate-mid-stream", "surrogate-first"])
def test_a_lone_surrogate_from_upstream_in_batch_mode_is_a_json_500(http: httpx.Client, upstream, script: str) -> None:
    upstream(script)
    body = {"model": MODEL, "messages": MESSAGES}
    response = http.post("/llm/proxy/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {PROXY_KEY}"})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"


def test_a_lone_surrogate_from_upstream_first_is_an_error_not_an_empty_200(http: httpx.Client, upstream) -> None:
    upstream("surrogate-first")
    body = {"model": MODEL, "messages": MESSAGES, "stream": True}
    response = http.post("/llm/proxy/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {PROXY_KEY}"})
    if response.status_code == 500:  # failed before the first chunk was sent
        assert response.json()["error"]["type"] == "server_error"
    else:
        last = response.text.removesuffix("\n\n").split("\n\n")[-1]
        assert (response.status_code, json.loads(last.removeprefix("data: "))["error"]["type"]) == (200, "server_error")
