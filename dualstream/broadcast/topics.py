"""What may be published: topic names, event names and the JSON text stored for each event."""

from __future__ import annotations

import json
import re
from typing import Any

from ..conf import DUALSTREAM
from ..events import check_field

_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
#: Event names the library writes itself: a published event must not pass for one of them.
RESERVED_EVENTS = frozenset({"done", "error", "reset"})


def check_topic(topic: object) -> str:
    """``topic`` if it is a valid name, else ``ValueError`` (it becomes part of a key in the engine)."""
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise ValueError(
            f"Invalid topic {topic!r}: 1 to 200 characters, ASCII letters, digits and '_', '.', ':', '-',"
            " starting with a letter or digit."
        )
    return topic


def check_event_name(event: str | None) -> str | None:
    if event is not None:
        check_field("event", event)
        if not event or event in RESERVED_EVENTS:
            raise ValueError(f"Invalid event name {event!r}: not empty, and not one of {sorted(RESERVED_EVENTS)}.")
    return event


def encode_data(data: Any) -> str:
    """``data`` as the compact JSON text every subscriber decodes, with the ``JSON_ENCODER`` setting.

    Refused with ``ValueError`` before anything is stored: data that is not JSON (NaN, infinities),
    and text that cannot be UTF-8 (a lone surrogate), which every stream of the topic would fail on.
    """
    encoder = DUALSTREAM.get("JSON_ENCODER")
    try:
        text = json.dumps(data, cls=encoder, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        raise ValueError(f"Cannot publish this data: {exc}") from exc
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"Cannot publish this data: it holds text that is not valid Unicode ({exc.reason})"
            ) from exc
    return text
