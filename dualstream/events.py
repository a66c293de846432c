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
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\0]")

#: A comment line: ignored by every parser, but it keeps proxies and clients from timing out.
HEARTBEAT = b": ping\n\n"


@dataclass(frozen=True, slots=True)
class Event:
    """One Server-Sent Event, validated when built so a bad field fails in ``produce()``, not on the wire.

    ``data`` that is a ``str`` is sent as text; anything else is sent as JSON.
    """

    data: Any
    event: str | None = None
    id: str | None = None
    retry: int | None = None

    def __post_init__(self) -> None:
        for name in ("event", "id"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"Event.{name} must be a str, not {type(value).__name__}")
            # A line break would end the field early; a NUL makes browsers ignore the id.
            if _FORBIDDEN_IN_FIELD.search(value):
                raise ValueError(f"Event.{name} must not contain CR, LF or NUL: {value!r}")
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


def data_field(data: Any, dumps: Dumps) -> str:
    """The ``data:`` lines for one value: at least one, so that the event is always dispatched."""
    text = data if isinstance(data, str) else dumps(data)
    if "\n" in text or "\r" in text:
        return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))
    return f"data: {text}\n"
