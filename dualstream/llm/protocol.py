"""The OpenAI chat-completions wire format: requests, chunks, completions, errors.

Pure Python, no Django: what goes in and out of ``/v1/chat/completions`` as
the OpenAI API reference describes it and as the official SDKs parse it.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..events import data_of
from ..renderers import SSERenderer

_JSON_TYPES: dict[type, str] = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


class LLMError(Exception):
    """An error answered in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

    Raise it from ``generate()`` or a hook: before the first token it is the
    HTTP response, with ``status``; after it, the stream's last event. The SDKs
    choose their exception class by status (400 ``BadRequestError``, 401
    ``AuthenticationError``, 429 ``RateLimitError``...).
    """

    def __init__(
        self, status: int, message: str, *, type: str | None = None, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or ("invalid_request_error" if status < 500 else "server_error")
        self.param = param
        self.code = code

    @property
    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat-completions request.

    Only the fields the view acts on are parsed; every other field (``tools``,
    ``stop``...) is accepted unchecked and kept in ``body``, for a
    ``generate()`` or a proxy that wants it. ``n`` other than 1 is refused:
    an answer has one choice.
    """

    model: str
    messages: list[dict[str, Any]]
    #: ``None`` when the body does not say: the request's usual negotiation decides.
    stream: bool | None = None
    include_usage: bool = False
    #: ``max_completion_tokens``, or the older ``max_tokens``.
    max_tokens: int | None = None
    temperature: float | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: bytes) -> ChatRequest:
        """The request in ``raw``; raises ``LLMError`` (400) naming the first bad parameter."""
        try:
            body = json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            raise LLMError(400, "The request body is not valid JSON.", code="invalid_json") from None
        except RecursionError:  # arrays or objects nested deeper than the parser's stack
            raise LLMError(400, "The request body is nested too deeply.", code="invalid_json") from None
        if _depth(body) > MAX_DEPTH:
            # A limit of its own, not the interpreter's: Python 3.13 parses what 3.11 refuses, and every
            # later step (encoding, forwarding upstream) would recurse as deep.
            raise LLMError(400, "The request body is nested too deeply.", code="invalid_json")
        if not isinstance(body, dict):
            raise LLMError(400, "The request body must be a JSON object.", code="invalid_json")
        model = _required(body, "model", str)
        messages = _required(body, "messages", list)
        if not messages:
            raise LLMError(400, "'messages' must not be empty.", param="messages", code="empty_array")
        for i, message in enumerate(messages):
            _check(message, f"messages[{i}]", dict)
            _check(message.get("role"), f"messages[{i}].role", str)
            _check(message.get("content"), f"messages[{i}].content", str, list, type(None))
        if _optional(body, "n", int) not in (None, 1):
            raise LLMError(400, "Only one choice is supported: 'n' must be 1.", param="n", code="unsupported_value")
        options = _optional(body, "stream_options", dict) or {}
        limit_name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        max_tokens = _optional(body, limit_name, int)
        if max_tokens is not None and max_tokens < 1:
            raise LLMError(400, f"'{limit_name}' must be at least 1.", param=limit_name, code="integer_below_min_value")
        temperature = _optional(body, "temperature", float, int)
        if temperature is not None and not 0 <= temperature <= 2:
            raise LLMError(400, "'temperature' must be between 0 and 2.", param="temperature", code="invalid_value")
        return cls(
            model=model,
            messages=messages,
            stream=_optional(body, "stream", bool),
            include_usage=bool(_optional(options, "include_usage", bool, param="stream_options.include_usage")),
            max_tokens=max_tokens,
            temperature=temperature,
            body=body,
        )


def model_not_found(name: str) -> LLMError:
    """The 404 for a model this endpoint does not serve; a long name is cut, not echoed whole."""
    shown = name if len(name) <= _SHOWN else name[:_SHOWN] + "..."
    return LLMError(404, f"The model {shown!r} does not exist.", param="model", code="model_not_found")


_SHOWN = 100  # characters of a client's model name an error repeats


#: Deepest nesting of arrays and objects a request body may have; OpenAI's own requests stay far below.
MAX_DEPTH = 64


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value``, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            if depth <= MAX_DEPTH:
                stack.extend((child, depth + 1) for child in item)
    return deepest


def _check(value: Any, param: str, *kinds: type) -> None:
    # type(), not isinstance(): JSON's true is not an integer.
    if type(value) not in kinds:
        expected, got = _JSON_TYPES[kinds[0]], _JSON_TYPES.get(type(value), "a value")
        message = f"Invalid type for '{param}': expected {expected}, got {got}."
        raise LLMError(400, message, param=param, code="invalid_type")


def _required(body: Mapping[str, Any], name: str, kind: type) -> Any:
    if body.get(name) is None:
        raise LLMError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    _check(body[name], name, kind)
    return body[name]


def _optional(body: Mapping[str, Any], name: str, *kinds: type, param: str | None = None) -> Any:
    value = body.get(name)
    if value is not None:
        _check(value, param or name, *kinds)
    return value


def message_text(message: Mapping[str, Any]) -> str:
    """A message's text: its ``content`` string, or its ``{"type": "text"}`` parts, one per line."""
    content = message.get("content")
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return content if isinstance(content, str) else ""


#: Characters ``word_count()`` splits at a time: about half a millisecond of ``str.split()`` each.
WORD_COUNT_SLICE = 64 * 1024


def word_count(text: str, slice_size: int = WORD_COUNT_SLICE) -> int:
    """``len(text.split())``, a slice at a time: one ``split()`` over megabytes keeps the GIL for tens of ms."""
    count = 0
    for start in range(0, len(text), slice_size):
        piece = text[start : start + slice_size]
        count += len(piece.split())
        if start and not piece[0].isspace() and not text[start - 1].isspace():
            count -= 1  # a word the slices' boundary cuts in two was counted in each
    return count


@dataclass(frozen=True, slots=True)
class Delta:
    """What ``generate()`` yields when a text token is not enough.

    ``yield "Hi"`` is ``yield Delta("Hi")``. ``extra`` goes into the chunk's
    ``delta`` as it is (``{"reasoning_content": ...}``, ``{"tool_calls": [...]}``)
    and is merged into the batch answer's message; ``finish_reason`` (for
    example ``"tool_calls"``) replaces the default ``"stop"``.
    """

    content: str | None = None
    finish_reason: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, Any]:
        """The chunk's ``delta`` object; empty when there is nothing to send."""
        return {**self.extra, "content": self.content} if self.content else dict(self.extra)


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts. Yield one from ``generate()`` when the model knows them exactly."""

    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class Completion:
    """What every chunk of one answer shares: one ``id``, one ``created`` time, one ``model``."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")
    created: int = field(default_factory=lambda: int(time.time()))

    def chunk(self, delta: Mapping[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """A ``chat.completion.chunk`` carrying ``delta`` for the single choice."""
        choice = {"index": 0, "delta": dict(delta), "logprobs": None, "finish_reason": finish_reason}
        return {**self._head(), "choices": [choice]}

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        """The chunk ``stream_options.include_usage`` asks for: usage, and no choices."""
        return {**self._head(), "choices": [], "usage": usage.as_dict()}

    def _head(self) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}


def completion_from_chunks(chunks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``chat.completion`` that ``chunks`` add up to: its message is every delta merged.

    Built from the very chunks a stream would send, so the batch answer's
    content is always exactly the concatenation of the streamed one.
    """
    message: dict[str, Any] = {}
    finish_reason = None
    usage = None
    for chunk in chunks:
        for choice in chunk["choices"]:
            merge_delta(message, choice["delta"])
            finish_reason = choice["finish_reason"] or finish_reason
        usage = chunk.get("usage") or usage
    # What OpenAI answers: no text at all is "", but null beside tool calls.
    message.setdefault("content", None if "tool_calls" in message else "")
    head = chunks[0]
    return {
        "id": head["id"],
        "object": "chat.completion",
        "created": head["created"],
        "model": head["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


# Keys that name things rather than carry text: a repeat replaces, never appends.
_IDENTITIES = frozenset({"role", "id", "type", "index"})


def merge_delta(into: dict[str, Any], delta: Mapping[str, Any]) -> None:
    """Add one streamed ``delta`` to the message built so far, as the SDKs' stream helpers do.

    Text is concatenated, objects merge key by key, and list items with an
    ``index`` (tool calls) merge into the item with the same index.
    """
    for key, value in delta.items():
        old = into.get(key)
        if isinstance(value, list) and (old is None or isinstance(old, list)):
            if old is None:
                old = into[key] = []
            _merge_items(old, value)
        elif isinstance(old, str) and isinstance(value, str) and key not in _IDENTITIES:
            into[key] = old + value
        elif isinstance(old, dict) and isinstance(value, Mapping):
            merge_delta(old, value)
        else:
            into[key] = copy.deepcopy(value)  # later merges must not write into the chunk it came from


def _merge_items(into: list[Any], items: list[Any]) -> None:
    for item in items:
        index = item.get("index") if isinstance(item, Mapping) else None
        same = next((o for o in into if index is not None and isinstance(o, dict) and o.get("index") == index), None)
        if same is None:
            into.append(copy.deepcopy(item))
        else:
            merge_delta(same, item)


class DataOnlySSERenderer(SSERenderer):
    """SSE as OpenAI-compatible APIs send it: data-only events, then ``data: [DONE]``.

    No ``event:`` or ``id:`` lines (an ``Event``'s name, id and retry are not
    sent): the official SDK's parser keeps the last id it saw and then takes
    every blank line for an empty event, and fails on it. A failure is
    ``data: {"error": {...}}``, on which the SDKs raise, with no ``[DONE]``
    after it. Heartbeat comments stay: every parser skips them.
    """

    #: The data of the last event of a complete stream.
    done: ClassVar[str] = "[DONE]"

    def item(self, item: Any) -> str:
        return super().item(data_of(item))

    def end(self) -> str:
        return super().item(self.done)

    def error(self, payload: dict[str, Any]) -> str:
        return self.item(payload)
