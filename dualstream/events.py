"""What ``produce()`` yields besides plain values: the ``Event`` value, and ``Reconnect``.

Pure Python, no Django. The field rules come from the WHATWG HTML standard,
section "Server-sent events"; ``renderers.SSERenderer`` writes events on the wire.
"""

from __future__ import annotations

import json
from typing import Any


class Event:
    """One Server-Sent Event, validated when built so a bad field fails in ``produce()``, not on the wire.

    ``data`` that is a ``str`` is sent as text; anything else is sent as JSON.
    ``id`` may be an ``int`` (a row's key, say), which is always a valid id.
    Treat an event as immutable: assigning to a field would skip the validation.
    """

    __slots__ = ("data", "event", "id", "json", "retry")

    #: The JSON text ``data`` was decoded from (``from_json()``), written as it is; None: encode ``data``.
    json: str | None

    def __init__(
        self, data: Any, event: str | None = None, id: str | int | None = None, retry: int | None = None
    ) -> None:
        # Checked inline, not in helper calls: a queryset streamed as SSE builds one event per row.
        if event is not None:
            check_field("event", event)
        if id is not None and type(id) is not int:
            check_field("id", id)
        if retry is not None and (type(retry) is not int or retry < 0):
            raise ValueError(f"Event.retry must be a non-negative int (milliseconds), not {retry!r}")
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.json = None

    @classmethod
    def from_json(
        cls, text: str, event: str | None = None, id: str | int | None = None, retry: int | None = None
    ) -> Event:
        """An event whose data is JSON text: ``data`` is its decoded value, and streams write the text itself.

        For an event sent to many streams (a broadcast), or data that arrives as
        JSON: it is encoded once, not once per stream. Invalid JSON raises ``ValueError``.
        """
        self = cls(json.loads(text), event, id, retry)
        self.json = text
        return self

    def __repr__(self) -> str:
        return f"Event(data={self.data!r}, event={self.event!r}, id={self.id!r}, retry={self.retry!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not Event:
            return NotImplemented
        return (self.data, self.event, self.id, self.retry) == (other.data, other.event, other.id, other.retry)


def data_of(item: Any) -> Any:
    """What an item carries: an ``Event``'s data, or the item itself."""
    return item.data if isinstance(item, Event) else item


def check_field(name: str, value: object) -> None:
    """Refuse a value that cannot be the ``event`` or ``id`` field of an event."""
    if not isinstance(value, str):
        raise TypeError(f"Event.{name} must be a str, not {type(value).__name__}")
    # A line break would end the field early; a NUL makes browsers ignore the id.
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"Event.{name} must not contain CR, LF or NUL: {value[:100]!r}")


class Reconnect(Exception):
    """Raise from ``produce()`` to end the stream as the server's cut, not its end: no ``done``.

    Clients reconnect and resume from their last id, after ``retry``
    milliseconds (SSE sends it as a ``retry:`` field; None: the view's
    ``reconnect_retry``). A way to move long-lived streams between workers.
    """

    def __init__(self, retry: int | None = None) -> None:
        super().__init__("The server ended the stream; reconnect.")
        self.retry = retry
