"""OpenAI-compatible endpoints as ``DualModeView`` subclasses: chat completions and the models."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Collection
from contextlib import aclosing
from functools import cached_property
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse, RawPostDataException
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.crypto import constant_time_compare
from django.utils.decorators import classonlymethod
from django.views.decorators.csrf import csrf_exempt

from ..conf import Setting
from ..negotiation import Mode
from ..offload import offload, offload_if
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
    model_not_found,
    word_count,
)

#: Bodies from this size on are parsed, and their prompt counted, in the CPU pool (``dualstream.offload``).
#: At 64 KiB both cost 1.5 ms on the loop for a body of many short messages, the slowest shape per byte
#: (0.25 ms for one long message); a hop to the pool costs 50 us (docs/performance.md, "Loop stalls").
OFFLOAD_BODY_SIZE = 64 * 1024


def bearer_token(request: HttpRequest) -> str | None:
    """The key in ``Authorization: Bearer <key>``, or None when the request has no such header."""
    scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


class OpenAIView(DualModeView):
    """What every OpenAI-compatible endpoint shares: bearer keys, CSRF where cookies count, OpenAI-shaped errors.

    API clients send a bearer key and no CSRF token: ``as_view()`` is
    ``csrf_exempt``, and the view runs Django's CSRF check itself on the
    requests a browser could send on its own (see ``needs_csrf_check()``).
    """

    #: Keys accepted as ``Authorization: Bearer <key>``; empty lets every request in.
    api_keys = Setting[Collection[str]]("API_KEYS", LLM)
    renderer_classes = {**DualModeView.renderer_classes, Mode.SSE: DataOnlySSERenderer}

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        return csrf_exempt(super().as_view(**initkwargs))

    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:  # type: ignore[override]
        try:
            self.check_csrf(request)
            if request.method != "OPTIONS":  # a CORS preflight carries no credentials
                await self.check_api_key(request)
        except LLMError as exc:
            return self.error_response(*self.get_error_body(exc))
        return await super().dispatch(request, *args, **kwargs)

    def needs_csrf_check(self, request: HttpRequest) -> bool:
        """Whether the request may carry credentials a browser sends by itself: then Django's CSRF rules apply.

        A bearer key is sent only by code that holds it (a cross-site page
        cannot add the header without a CORS preflight), and a request with
        no cookie and no other ``Authorization`` has no ambient credentials to
        abuse. Anything else (a session cookie, HTTP Basic) is checked.
        """
        if bearer_token(request) is not None:
            return False
        return bool(request.COOKIES) or "HTTP_AUTHORIZATION" in request.META

    def check_csrf(self, request: HttpRequest) -> None:
        """Raise ``LLMError`` (403) when the request needs Django's CSRF check and fails it.

        The check is Django's own, as ``csrf_protect`` runs it (same token,
        ``Origin`` and ``Referer`` rules, ``CSRF_TRUSTED_ORIGINS``); Django
        logs the reason on ``django.security.csrf``.
        """
        if not self.needs_csrf_check(request):
            return
        # The middleware wants a get_response and a view: it calls neither, and reads only the view's csrf_exempt.
        refusal = CsrfViewMiddleware(HttpResponse).process_view(request, HttpResponse, (), {})
        if refusal is not None:
            raise LLMError(
                403,
                "CSRF verification failed: a request authenticated by cookie needs Django's CSRF token "
                "(the X-CSRFToken header); API clients send 'Authorization: Bearer <key>'.",
                code="csrf_failed",
            )

    async def check_api_key(self, request: HttpRequest) -> None:
        """Raise ``LLMError`` (401) unless the request carries one of ``api_keys``.

        Override it for keys kept in the database, per-user quotas (raise a 429),
        or to note who is calling.
        """
        if not self.api_keys:
            return
        key = bearer_token(request)
        if key is None or not any(constant_time_compare(key, k) for k in self.api_keys):
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
    _chat_error: Exception | None = None
    #: The model names served; asking for another is a 404. Empty: any name.
    models: Collection[str] = ()

    generate: Callable[[ChatRequest], AsyncGenerator[str | Delta | Usage, None]]

    @classonlymethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., Any]:
        require_async_generator(cls, "generate", "async def generate(self, chat): ... yield token")
        return super().as_view(**initkwargs)

    @cached_property
    def chat(self) -> ChatRequest:
        """The request body, validated: raises ``LLMError`` (400)."""
        if self._chat_error is not None:
            raise self._chat_error
        return self._parse()

    def _parse(self) -> ChatRequest:
        return ChatRequest.parse(self._body())

    def _body(self) -> bytes:
        try:
            return self.request.body
        except RawPostDataException:  # a form body that the CSRF check read: it is not JSON either
            raise LLMError(400, "The request body is not valid JSON.", code="invalid_json") from None

    @cached_property
    def _large(self) -> bool:
        """Whether the body is large enough for its reading, parsing and counting to go to the CPU pool."""
        declared = self.request.META.get("CONTENT_LENGTH") or ""
        if declared.isdigit():  # known without reading the body (which may be in a temporary file)
            return int(declared) >= OFFLOAD_BODY_SIZE
        try:
            return len(self._body()) >= OFFLOAD_BODY_SIZE
        except (LLMError, SuspiciousOperation):
            return False

    def get_mode(self) -> Mode:
        """The body's ``"stream"`` decides, as OpenAI clients expect; without it, the usual negotiation.

        A large body is parsed later, off the event loop (``post()``), and its ``"stream"`` applied then.
        """
        try:
            stream = None if self._large else self.chat.stream
        except (LLMError, SuspiciousOperation):  # a bad or too big body: produce() meets it again and reports it
            stream = None
        if stream is None:
            return super().get_mode()
        return Mode.SSE if stream else Mode.JSON

    async def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if self._large and "chat" not in self.__dict__:  # after the key check: nobody else's body is parsed
            try:
                self.chat = await offload(self._parse)
            except (LLMError, SuspiciousOperation) as exc:
                self._chat_error = exc  # produce() meets it and reports it, with nothing parsed again
            else:
                if self.chat.stream is not None:  # as get_mode() would have decided: the body wins
                    self.mode, self._refusal = (Mode.SSE if self.chat.stream else Mode.JSON), None
        return await super().post(request, *args, **kwargs)

    def count_prompt_tokens(self, chat: ChatRequest) -> int:
        """The prompt's size for the default usage: words, unless overridden with a real tokenizer.

        Runs in the CPU pool (``dualstream.offload``) for a body of ``OFFLOAD_BODY_SIZE`` or more:
        no database access here.
        """
        return sum(word_count(message_text(message)) for message in chat.messages)

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        chat = self.chat
        if self.models and chat.model not in self.models:
            raise model_not_found(chat.model)
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
        if chat.include_usage or not self.mode.streams:
            if usage is None:
                usage = Usage(await offload_if(self._large, self.count_prompt_tokens, chat), tokens)
            yield completion.usage_chunk(usage)

    def get_batch_document(self, items: list[Any]) -> Any:
        return completion_from_chunks(items)


class ModelsView(OpenAIView):
    """What the model endpoints share: the names served, as OpenAI's model objects."""

    http_method_names = ["get", "head", "options"]
    #: The model names listed; a mapping lists its keys (a proxy's ``models`` can be passed as it is).
    models: Collection[str] = ()
    owned_by: str = "dualstream"

    def model_object(self, name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 0, "owned_by": self.owned_by}


class ModelListView(ModelsView):
    """``GET /v1/models``: the names in ``models``, as OpenAI's model list."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[dict[str, Any], None]:
        for name in self.models:
            yield self.model_object(name)

    def get_batch_document(self, items: list[Any]) -> Any:
        return {"object": "list", "data": items}


class ModelDetailView(ModelsView):
    """``GET /v1/models/<path:model>`` (the SDKs' ``models.retrieve``): one of ``models``, or a 404 in OpenAI's shape."""

    async def produce(self, request: HttpRequest, model: str) -> AsyncGenerator[dict[str, Any], None]:
        if model not in self.models:
            raise model_not_found(model)
        yield self.model_object(model)

    def get_batch_document(self, items: list[Any]) -> Any:
        return items[0]
