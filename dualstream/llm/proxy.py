"""``ChatCompletionProxyView``: an OpenAI-compatible endpoint in front of another one.

Django adds what the model server lacks: its own client keys (``DUALSTREAM_LLM['API_KEYS']``,
or ``check_api_key()`` for quotas), logging, a pinned model; the upstream sees
only this server's key. Needs httpx (``pip install httpx``), which is why this
module is not imported by ``dualstream.llm``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
from django.core.exceptions import ImproperlyConfigured

from ..conf import Setting
from .conf import LLM
from .protocol import ChatRequest, Delta, LLMError, Usage
from .views import ChatCompletionView


class ChatCompletionProxyView(ChatCompletionView):
    """Answers each request by streaming it from ``upstream_url``, in either mode.

    The upstream is always asked for a stream with usage, so a batch answer and
    ``include_usage`` both carry its exact token counts.
    """

    #: The upstream API's base URL, e.g. ``https://api.openai.com/v1``.
    upstream_url = Setting[str]("UPSTREAM_URL", LLM)
    #: Sent upstream as ``Authorization: Bearer <key>``; the client's own key never is.
    upstream_api_key = Setting[str]("UPSTREAM_API_KEY", LLM)
    #: Seconds to connect, and to wait for each piece of the upstream's answer.
    upstream_timeout: float = 60.0

    def get_upstream_body(self, chat: ChatRequest) -> dict[str, Any]:
        """The body sent upstream: the client's, every field kept, streamed with usage. Override to map models."""
        return {**chat.body, "stream": True, "stream_options": {"include_usage": True}}

    async def generate(self, chat: ChatRequest) -> AsyncGenerator[Delta | Usage, None]:
        if not self.upstream_url:
            raise ImproperlyConfigured("Set DUALSTREAM_LLM['UPSTREAM_URL'] or the view's upstream_url.")
        url = self.upstream_url.rstrip("/") + "/chat/completions"
        headers = {"Authorization": f"Bearer {self.upstream_api_key}"} if self.upstream_api_key else {}
        try:
            async with httpx.AsyncClient(timeout=self.upstream_timeout) as client:
                async with client.stream("POST", url, json=self.get_upstream_body(chat), headers=headers) as response:
                    if response.status_code != 200:
                        raise upstream_error(response.status_code, _json_or_none(await response.aread()))
                    async for data in sse_data(response.aiter_lines()):
                        if data == "[DONE]":
                            return
                        chunk = _json_or_none(data)
                        if not isinstance(chunk, dict) or "error" in chunk:
                            raise upstream_error(502, chunk)
                        for piece in pieces_of(chunk):
                            yield piece
        except httpx.TimeoutException as exc:
            raise LLMError(504, "The upstream API did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise LLMError(502, "The upstream API could not be reached.") from exc


def upstream_error(status: int, body: Any) -> LLMError:
    """The upstream's error, relayed: its 4xx as they are (the request was at fault), anything else as a 502.

    A 401 or 403 is about this server's upstream key, not the client's: the
    client gets a 502 without the upstream's message.
    """
    if status in (401, 403):
        return LLMError(502, f"The upstream API refused this server's credentials ({status}).")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    return LLMError(
        status if 400 <= status < 500 else 502,
        str(error.get("message") or f"The upstream API failed ({status})."),
        type=error.get("type"),
        param=error.get("param"),
        code=error.get("code"),
    )


def pieces_of(chunk: Mapping[str, Any]) -> Iterator[Delta | Usage]:
    """What one upstream ``chat.completion.chunk`` says, as ``generate()`` pieces (first choice only)."""
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) == 0:
            delta = {k: v for k, v in (choice.get("delta") or {}).items() if v is not None and k != "role"}
            yield Delta(delta.pop("content", None), choice.get("finish_reason"), delta)
    usage = chunk.get("usage")
    if usage:
        yield Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each event in a ``text/event-stream`` (all an OpenAI stream carries)."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
            data = []
        elif line.startswith("data:"):
            data.append(line[6:] if line.startswith("data: ") else line[5:])
    if data:
        yield "\n".join(data)


def _json_or_none(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
