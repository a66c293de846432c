"""LLM views with known behaviour, for tests/test_llm*.py (routed under /llm/ by tests/support/urls.py)."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncGenerator

from django.http import HttpRequest, HttpResponse

from dualstream import DualModeView, Mode
from dualstream.llm import ChatCompletionView, ChatRequest, DataOnlySSERenderer, Delta, Usage

from .probes import get_probe

TOOL_CALL_FRAGMENTS = ('{"city": ', '"Paris"}')
#: What a scripted upstream's errors say about its account: it must never reach the proxy's client.
UPSTREAM_SECRET = "org-s3cr3t"


class ScriptedChatView(ChatCompletionView):
    """Tokens ``"t0 "``, ``"t1 "``... as the body's extra fields say, reported to the probe named by ``probe``.

    ``tokens``: how many (``null``: endless); ``delay``: seconds before each;
    ``fail_after``: raise ``RuntimeError`` once that many were yielded.
    """

    async def generate(self, chat: ChatRequest) -> AsyncGenerator[str, None]:
        body = chat.body
        probe = get_probe(body.get("probe"))
        count, delay, fail_after = body.get("tokens", 3), body.get("delay", 0), body.get("fail_after")
        with probe.running():
            for i in itertools.count() if count is None else range(count):
                if i == fail_after:
                    raise RuntimeError("internal detail 42")
                await asyncio.sleep(delay)
                probe.count()
                yield f"t{i} "


class ToolCallChatView(ChatCompletionView):
    """Reasoning, text, then one tool call sent in fragments; usage reported by the generator."""

    async def generate(self, chat: ChatRequest) -> AsyncGenerator[str | Delta | Usage, None]:
        yield Delta(extra={"reasoning_content": "The user wants "})
        yield Delta(extra={"reasoning_content": "the weather."})
        yield "Let me check."
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather", "arguments": ""}}
        yield Delta(extra={"tool_calls": [call]})
        for fragment in TOOL_CALL_FRAGMENTS:
            yield Delta(extra={"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
        yield Delta(finish_reason="tool_calls")
        yield Usage(prompt_tokens=11, completion_tokens=7)


class DataOnlyView(DualModeView):
    """A view outside OpenAI's format, as docs/llm.md shows it: ``?q=`` echoed word by word."""

    renderer_classes = {**DualModeView.renderer_classes, Mode.SSE: DataOnlySSERenderer}

    async def produce(self, request: HttpRequest) -> AsyncGenerator[dict[str, str], None]:
        for word in request.GET["q"].split():
            yield {"content": word + " "}

    def get_batch_document(self, items: list[dict[str, str]]) -> dict[str, str]:
        return {"content": "".join(item["content"] for item in items)}


def _sse(*data: str) -> bytes:
    return "".join(f"data: {d}\n\n" for d in data).encode()


def _chunk(content: str) -> str:
    """An upstream chunk carrying ``content``; json.dumps escapes a lone surrogate as ``\\udXXX``, as upstreams do."""
    return json.dumps({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]})


def _error(message: str) -> str:
    return json.dumps({"error": {"message": message, "type": "tokens", "param": None, "code": "rate_limit_exceeded"}})


#: What a scripted upstream answers, by the name in its URL: (status, content type, body).
UPSTREAM_SCRIPTS: dict[str, tuple[int, str, bytes]] = {
    "surrogate-mid-stream": (200, "text/event-stream", _sse(_chunk("fine "), _chunk("\ud800"), "[DONE]")),
    "surrogate-first": (200, "text/event-stream", _sse(_chunk("\udfff"), "[DONE]")),
    "rate-limited": (429, "application/json", _error(f"Rate limit reached for {UPSTREAM_SECRET}.").encode()),
    "bad-request": (400, "application/json", _error(f"{UPSTREAM_SECRET} refuses.").encode()),
    "server-error": (500, "text/html", f"<h1>{UPSTREAM_SECRET} is down</h1>".encode()),
    "error-mid-stream": (200, "text/event-stream", _sse(_chunk("fine "), _error(f"{UPSTREAM_SECRET} broke."))),
    "deep-json": (200, "text/event-stream", _sse(_chunk("fine "), "[" * 5000 + "]" * 5000)),
    "not-a-chunk": (200, "text/event-stream", _sse(_chunk("fine "), '{"choices": [1]}')),
    "bad-usage": (200, "text/event-stream", _sse(_chunk("fine "), '{"choices": [], "usage": {"prompt_tokens": "x"}}')),
}


async def scripted_upstream(request: HttpRequest, script: str) -> HttpResponse:
    """An OpenAI-compatible upstream for the proxy, answering as ``UPSTREAM_SCRIPTS[script]`` says.

    ``echo`` streams one token: the JSON of what the proxy sent, its body and its ``Authorization``.
    """
    if script == "echo":
        sent = {"body": json.loads(request.body), "authorization": request.headers.get("Authorization")}
        return HttpResponse(_sse(_chunk(json.dumps(sent)), "[DONE]"), content_type="text/event-stream")
    status, content_type, body = UPSTREAM_SCRIPTS[script]
    return HttpResponse(body, status=status, content_type=content_type)


#: Where each ``ThreadRecordingChatView.count_prompt_tokens()`` ran: (thread name, whether a loop runs there).
COUNTED_IN: list[tuple[str, bool]] = []


class ThreadRecordingChatView(ScriptedChatView):
    """``ScriptedChatView`` noting where it counts the prompt; ``"busy"`` in the body: counting takes that many seconds."""

    def count_prompt_tokens(self, chat: ChatRequest) -> int:
        COUNTED_IN.append((threading.current_thread().name, asyncio_running()))
        end = time.perf_counter() + chat.body.get("busy", 0)
        while time.perf_counter() < end:  # Python code, as a tokenizer's: the GIL is given back between bytecodes
            pass
        return super().count_prompt_tokens(chat)


def asyncio_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
