"""``ChatCompletionProxyView``: an OpenAI-compatible endpoint in front of another one.

Django adds what the model server lacks: its own client keys (``DUALSTREAM["LLM"]["API_KEYS"]``,
or ``check_api_key()`` for quotas), logging, the models clients may ask for;
the upstream sees only this server's key and the fields this proxy supports.
Needs httpx (``pip install httpx``), which is why this module is not imported
by ``dualstream.llm``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping
from typing import Any

import httpx
from django.core.exceptions import ImproperlyConfigured
from django.utils.decorators import classonlymethod

from ..conf import Setting
from ..encoding import encode_document
from ..offload import offload_if
from .conf import LLM
from .protocol import ChatRequest, Delta, LLMError, Usage
from .views import ChatCompletionView

logger = logging.getLogger("dualstream.llm")

#: The request fields the proxy sends upstream besides ``model``, ``messages`` and its own ``stream`` options.
UPSTREAM_FIELDS = frozenset(
    {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
    }
)


class ChatCompletionProxyView(ChatCompletionView):
    """Answers each request by streaming it from ``upstream_url``, in either mode.

    The upstream is always asked for a stream with usage, so a batch answer and
    ``include_usage`` both carry its exact token counts.
    """

    #: The models clients may ask for (required): a mapping of the names clients use to the upstream's
    #: names, or a list of names sent as they are. Any other name is a 404, never forwarded.
    models: Collection[str] = ()
    #: The fields of the client's body sent upstream; any other is dropped.
    upstream_fields: Collection[str] = UPSTREAM_FIELDS
    #: The upstream API's base URL, e.g. ``https://api.openai.com/v1``.
    upstream_url = Setting[str]("UPSTREAM_URL", LLM)
    #: Sent upstream as ``Authorization: Bearer <key>``; the client's own key never is.
    upstream_api_key = Setting[str]("UPSTREAM_API_KEY", LLM)
    #: Seconds to connect, and to wait for each piece of the upstream's answer.
    upstream_timeout: float = 60.0

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        if not initkwargs.get("models", cls.models):
            raise ImproperlyConfigured(
                f"{cls.__qualname__}.models is empty: name the models clients may ask for, "
                "e.g. models={'fast': 'gpt-4o-mini'} (client name -> upstream name) or models=['gpt-4o-mini']."
            )
        return super().as_view(**initkwargs)

    def upstream_model(self, name: str) -> str:
        """The upstream's name for the model a client asked for (one of ``models``)."""
        return self.models[name] if isinstance(self.models, Mapping) else name

    def get_upstream_body(self, chat: ChatRequest) -> dict[str, Any]:
        """The body sent upstream: the allowed fields, the mapped model, streamed with usage."""
        body = {name: value for name, value in chat.body.items() if name in self.upstream_fields}
        return {
            **body,
            "model": self.upstream_model(chat.model),
            "messages": chat.messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    async def generate(self, chat: ChatRequest) -> AsyncGenerator[Delta | Usage, None]:
        if not self.upstream_url:
            raise ImproperlyConfigured("Set DUALSTREAM['LLM']['UPSTREAM_URL'] or the view's upstream_url.")
        url = self.upstream_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        if self.upstream_api_key:
            headers["Authorization"] = f"Bearer {self.upstream_api_key}"
        body = self.get_upstream_body(chat)
        content = await offload_if(self._large, upstream_content, body, chat.messages)
        try:
            async with (
                httpx.AsyncClient(timeout=self.upstream_timeout) as client,
                client.stream("POST", url, content=content, headers=headers) as response,
            ):
                if response.status_code != 200:
                    raise upstream_error(response.status_code, (await response.aread()).decode(errors="replace"))
                async for data in sse_data(response.aiter_lines()):
                    if data == "[DONE]":
                        return
                    for piece in pieces_of(data):
                        yield piece
        except httpx.TimeoutException as exc:
            raise LLMError(504, "The upstream API did not answer in time.") from exc
        except httpx.HTTPError as exc:
            raise LLMError(502, "The upstream API could not be reached.") from exc


_UPSTREAM_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def upstream_content(body: Mapping[str, Any], messages: list[Any]) -> bytes:
    """The upstream request's JSON, as httpx's ``json=`` writes it, each of ``messages`` encoded by a call of its own."""
    return encode_document(_UPSTREAM_JSON.encode, body, messages).encode()


def upstream_error(status: int, text: str) -> LLMError:
    """A generic error for the client; the upstream's own text goes to the server's log only.

    That text may name the upstream account (``org-...``), its limits or its
    key. The client gets the upstream's 4xx status (a 429 stays a 429, which
    the SDKs retry), except 401 and 403, which are about this server's
    upstream key: those and the upstream's 5xx are a 502.
    """
    logger.warning("The upstream API answered %s: %.2000s", status, text)
    if status in (401, 403) or not 400 <= status < 500:
        return LLMError(502, f"The upstream API failed ({status}).")
    return LLMError(status, f"The upstream API refused the request ({status}).")


def pieces_of(data: str) -> list[Delta | Usage]:
    """What one upstream ``chat.completion.chunk`` says, as ``generate()`` pieces (first choice only).

    Anything else (an ``error`` object, text, a chunk of another shape) is a
    502, its text logged only.
    """
    try:
        chunk = json.loads(data)
        if "error" in chunk:
            raise ValueError("an error object")
        pieces: list[Delta | Usage] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) == 0:
                delta = {k: v for k, v in (choice.get("delta") or {}).items() if v is not None and k != "role"}
                pieces.append(Delta(delta.pop("content", None), choice.get("finish_reason"), delta))
        usage = chunk.get("usage")
        if usage:
            pieces.append(Usage(_count(usage, "prompt_tokens"), _count(usage, "completion_tokens")))
    except (ValueError, TypeError, AttributeError, RecursionError):
        logger.warning("The upstream API sent a broken stream: %.2000s", data)
        raise LLMError(502, "The upstream API sent a broken stream.") from None
    return pieces


def _count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name, 0)
    if type(value) is not int:
        raise TypeError(f"{name} is not an integer")
    return value


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
