"""One renderer per streamed mode: how items, the end and a failure look on the wire.

A renderer turns values into text; the pump (``streaming.py``) decides when
that text is written. Renderers return ``str`` so that the pump can join many
items and encode them to UTF-8 once per write.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .events import HEARTBEAT, Dumps, Event, check_field, data_field

#: The ``id`` of the final ``done`` event. A browser's EventSource reconnects
#: after every stream and sends the last id it saw: this one says the stream
#: had completed, so the view answers 204 and the browser stops.
COMPLETED_ID = "dualstream-completed"


class Renderer:
    """Base for the streamed renderers; each instance renders one response."""

    content_type: ClassVar[str]
    #: Bytes written when the stream has been silent for a heartbeat interval (None: never).
    heartbeat: ClassVar[bytes | None] = None
    #: Extra response headers.
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, dumps: Dumps) -> None:
        self.dumps = dumps

    def start(self) -> str:
        """Text written before the first item."""
        return ""

    def item(self, item: Any) -> str:
        raise NotImplementedError

    def end(self) -> str:
        """Text written after the last item when ``produce()`` returned normally."""
        return ""

    def error(self, payload: dict[str, Any]) -> str | None:
        """Text that reports a failure after the response has started; None ends the stream as it is."""
        return None


class SSERenderer(Renderer):
    """``text/event-stream``: items are events; the end is a ``done`` event, a failure an ``error`` event."""

    content_type = "text/event-stream; charset=utf-8"
    heartbeat = HEARTBEAT
    # no-cache: a proxy must not serve a stale stream. X-Accel-Buffering: nginx must not hold events back.
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    def item(self, item: Any) -> str:
        if isinstance(item, Event):
            return item.encode(self.dumps)
        return data_field(item, self.dumps) + "\n"

    def end(self) -> str:
        # Named, so that onmessage handlers never see it.
        return Event("", event="done", id=COMPLETED_ID).encode(self.dumps)

    def error(self, payload: dict[str, Any]) -> str:
        return Event(payload, event="error").encode(self.dumps)


class KeyedSSERenderer(SSERenderer):
    """SSE whose items may also be ``(id, data)`` pairs: how ``QuerySetView`` sends each row with its key.

    A pair is written as its event directly: building an ``Event`` per row cost
    SSE exports about a tenth of their throughput, and a call per row to a
    shared event encoder 4% of the instructions per row. Other items are rendered as
    ``SSERenderer`` renders them.
    """

    def item(self, item: Any) -> str:
        if type(item) is not tuple:
            return super().item(item)
        id, data = item
        if type(id) is not int:  # an int is always a valid id; anything else is checked as Event checks it
            id = str(id)
            check_field("id", id)
        return f"id: {id}\n{data_field(data, self.dumps)}\n"


class NDJSONRenderer(Renderer):
    """``application/x-ndjson``: one JSON value per line, for curl, jq and scripts.

    No heartbeats: a blank line is not a JSON value and would break naive line readers.
    """

    content_type = "application/x-ndjson; charset=utf-8"
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

    def item(self, item: Any) -> str:
        return self.dumps(item.data if isinstance(item, Event) else item) + "\n"

    def error(self, payload: dict[str, Any]) -> str:
        return self.dumps(payload) + "\n"


class JSONArrayRenderer(Renderer):
    """The batch document ``{"items": [...]}`` written item by item, at constant memory.

    A failure leaves the document unterminated, so that no client takes it for complete.
    """

    content_type = "application/json"
    heartbeat = b" "  # whitespace between JSON tokens is valid and keeps proxies awake

    def __init__(self, dumps: Dumps) -> None:
        super().__init__(dumps)
        self._separator = ""

    def start(self) -> str:
        return '{"items":['

    def item(self, item: Any) -> str:
        text = self._separator + self.dumps(item.data if isinstance(item, Event) else item)
        self._separator = ","
        return text

    def end(self) -> str:
        return "]}"
