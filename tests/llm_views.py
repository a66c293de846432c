"""LLM views with known behaviour, for tests/test_llm*.py (routed under /llm/ by tests/urls.py)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator
from typing import Any

from django.http import HttpRequest

from dualstream import DualModeView, Mode
from dualstream.llm import ChatCompletionView, ChatRequest, DataOnlySSERenderer, Delta, StreamChunk, Usage

from .probes import get_probe

TOOL_CALL_FRAGMENTS = ('{"city": ', '"Paris"}')


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


class StreamChunkView(DualModeView):
    """An LLM view outside OpenAI's format, as docs/llm.md shows it: ``?q=`` echoed word by word."""

    renderer_classes = {**DualModeView.renderer_classes, Mode.SSE: DataOnlySSERenderer}

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        for word in request.GET["q"].split():
            yield StreamChunk("answer-1", word + " ").as_dict()
        yield StreamChunk("answer-1", finish_reason="stop").as_dict()

    def get_batch_document(self, items: list[Any]) -> Any:
        return StreamChunk.join(items)
