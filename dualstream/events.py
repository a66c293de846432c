"""Server-Sent Events: the ``Event`` value and its wire encoding.

Pure Python, no Django: the rules come from the WHATWG HTML standard,
section "Server-sent events" (the ``text/event-stream`` format).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# A JSON encoder's ``encode``: value -> JSON text.
Dumps = Callable[[Any], str]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")

#: A comment line: ignored by every parser, but it keeps proxies and clients from timing out.
HEARTBEAT = b": ping\n\n"


@dataclass(slots=True)
class Event:
    """One Server-Sent Event, validated when built so a bad field fails in ``produce()``, not on the wire.

    ``data`` that is a ``str`` is sent as text; anything else is sent as JSON.
    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``,
    which doubled the cost of building one, and a queryset streamed as SSE
    builds one per row. Build a new ``Event`` rather than assigning to a field,
    which would skip the validation.
    """

    data: Any
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        if self.event is not None:
            check_field("event", self.event)
        if self.id is not None:
            check_field("id", self.id)
        retry = self.retry
        if retry is not None and (type(retry) is not int or retry < 0):
            raise ValueError(f"Event.retry must be a non-negative int (milliseconds), not {retry!r}")

    def encode(self, dumps: Dumps) -> str:
        """The event as ``text/event-stream`` text, ending with the blank line that dispatches it."""
        head = ""
        if self.event is not None:
            head += f"event: {self.event}\n"
        if self.id is not None:
            head += f"id: {self.id}\n"
        if self.retry is not None:
            head += f"retry: {self.retry}\n"
        return head + data_field(self.data, dumps) + "\n"


def check_field(name: str, value: object) -> None:
    """Refuse a value that cannot be the ``event`` or ``id`` field of an event."""
    if not isinstance(value, str):
        raise TypeError(f"Event.{name} must be a str, not {type(value).__name__}")
    # A line break would end the field early; a NUL makes browsers ignore the id.
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"Event.{name} must not contain CR, LF or NUL: {value!r}")


def data_field(data: Any, dumps: Dumps) -> str:
    """The ``data:`` lines for one value: at least one, so that the event is always dispatched."""
    text = data if isinstance(data, str) else dumps(data)
    if "\n" in text or "\r" in text:
        return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    return f"data: {text}\n"
