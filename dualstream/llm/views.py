"""OpenAI-compatible endpoints as ``DualModeView`` subclasses: chat completions and the model list."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection, Sequence
from contextlib import aclosing
from functools import cached_property
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.crypto import constant_time_compare
from django.utils.decorators import classonlymethod
from django.views.decorators.csrf import csrf_exempt

from ..conf import Setting
from ..negotiation import Mode
from ..views import DualModeView, require_async_generator
from .conf import LLM
from .protocol import (
    ChatRequest,
    Completion,
    DataOnlySSERenderer,
    Delta,
    LLMError,
    Usage,
    completion_from_chunks,
    message_text,
)


class OpenAIView(DualModeView):
    """What every OpenAI-compatible endpoint shares: bearer keys, OpenAI-shaped errors, data-only SSE.

    Clients authenticate with a key, not a cookie, so CSRF does not apply:
    ``as_view()`` returns a ``csrf_exempt`` view.
    """

    #: Keys accepted as ``Authorization: Bearer <key>``; empty lets every request in.
    api_keys = Setting[Collection[str]]("API_KEYS", LLM)
    renderer_classes = {**DualModeView.renderer_classes, Mode.SSE: DataOnlySSERenderer}

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        return csrf_exempt(super().as_view(**initkwargs))

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.method != "OPTIONS":  # a CORS preflight carries no credentials
            try:
                await self.check_api_key(request)
            except LLMError as exc:
                return self.error_response(*self.get_error_body(exc))
        return await super().dispatch(request, *args, **kwargs)

    async def check_api_key(self, request: HttpRequest) -> None:
        """Raise ``LLMError`` (401) unless the request carries one of ``api_keys``.

        Override it for keys kept in the database, per-user quotas (raise a 429),
        or to note who is calling.
        """
        if not self.api_keys:
            return
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not any(constant_time_compare(key.strip(), k) for k in self.api_keys):
            raise LLMError(
                401, "Missing or incorrect API key: send 'Authorization: Bearer <key>'.", code="invalid_api_key"
            )

    def get_error_body(self, exc: Exception) -> tuple[int, dict[str, Any]]:
        """OpenAI's error shape for every failure; other exceptions keep the status and message Django would give."""
        if isinstance(exc, LLMError):
            return exc.status, exc.body
        status, body = super().get_error_body(exc)
        return status, LLMError(status, body["error"]["message"]).body


class ChatCompletionView(OpenAIView):
    """``POST /v1/chat/completions``: write ``generate()``, serve the OpenAI API.

    ::

        class EchoView(ChatCompletionView):
            async def generate(self, chat):
                for word in message_text(chat.messages[-1]).split():
                    yield word + " "

    ``generate(chat)`` is an async generator of ``str`` tokens, ``Delta`` for
    anything richer, and optionally one ``Usage``. Each non-empty piece of
    content counts as one token, for ``max_tokens`` and for the default usage.
    The body's ``"stream"`` picks the answer: ``chat.completion.chunk`` events
    ending with ``data: [DONE]``, or one ``chat.completion`` built from those
    same chunks.
    """

    http_method_names = ["post", "options"]
    #: The model names served; asking for another is a 404. Empty: any name.
    models: Sequence[str] = ()

    generate: Callable[[ChatRequest], AsyncGenerator[str | Delta | Usage, None]]

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        require_async_generator(cls, "generate", "async def generate(self, chat): ... yield token")
        return super().as_view(**initkwargs)

    @cached_property
    def chat(self) -> ChatRequest:
        """The request body, validated: raises ``LLMError`` (400)."""
        return ChatRequest.parse(self.request.body)

    def get_mode(self) -> Mode:
        """The body's ``"stream"`` decides, as OpenAI clients expect; without it, the usual negotiation."""
        try:
            stream = self.chat.stream
        except Exception:  # a bad or too big body: produce() meets it again and reports it
            stream = None
        if stream is None:
            return super().get_mode()
        return Mode.SSE if stream else Mode.JSON

    def count_prompt_tokens(self, chat: ChatRequest) -> int:
        """The prompt's size for the default usage: words, unless overridden with a real tokenizer."""
        return sum(len(message_text(message).split()) for message in chat.messages)

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        chat = self.chat
        if self.models and chat.model not in self.models:
            raise LLMError(404, f"The model {chat.model!r} does not exist.", param="model", code="model_not_found")
        completion = Completion(chat.model)
        tokens, finish_reason, usage = 0, "stop", None
        started = False  # the role chunk waits for the first piece: a failure before it is an HTTP error
        async with aclosing(self.generate(chat)) as pieces:
            async for piece in pieces:
                if isinstance(piece, Usage):
                    usage = piece
                    continue
                delta = Delta(piece) if isinstance(piece, str) else piece
                if not isinstance(delta, Delta):
                    raise TypeError(f"generate() yielded a {type(piece).__name__}: yield str, Delta or Usage")
                if delta.content:
                    if tokens == chat.max_tokens:
                        finish_reason = "length"
                        break
                    tokens += 1
                if not started:
                    started = True
                    yield completion.chunk({"role": "assistant"})
                if delta.fields:
                    yield completion.chunk(delta.fields)
                finish_reason = delta.finish_reason or finish_reason
        if not started:
            yield completion.chunk({"role": "assistant"})
        yield completion.chunk({}, finish_reason)
        if chat.include_usage or not self.get_mode().streams:
            yield completion.usage_chunk(usage or Usage(self.count_prompt_tokens(chat), tokens))

    def get_batch_document(self, items: list[Any]) -> Any:
        return completion_from_chunks(items)


class ModelListView(OpenAIView):
    """``GET /v1/models``: the names in ``models``, as OpenAI's model list."""

    http_method_names = ["get", "head", "options"]
    models: Sequence[str] = ()
    owned_by: str = "dualstream"

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        for name in self.models:
            yield {"id": name, "object": "model", "created": 0, "owned_by": self.owned_by}

    def get_batch_document(self, items: list[Any]) -> Any:
        return {"object": "list", "data": items}
