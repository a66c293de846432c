"""Reading a client's resume point: the ``Last-Event-ID`` it sent, as the number a producer counts with."""

from __future__ import annotations

#: Longest ``Last-Event-ID`` a view reads; a longer one is ignored, as if none was sent.
MAX_EVENT_ID_LENGTH = 1024
# 18 digits always fit a 64-bit integer, and int() of a long digit string is quadratic.
_MAX_DIGITS = 18


def int_id(last_event_id: str | None) -> int | None:
    """The non-negative integer an event id holds, or None for no id or any other text.

    Only ASCII digits count (``"²"`` is a digit to ``str.isdigit()``, not to
    ``int()``), at most 18 of them. Resume *after* it::

        last = int_id(self.last_event_id)
        start = 10 if last is None else min(10, last - 1)
    """
    if last_event_id is None or not 0 < len(last_event_id) <= _MAX_DIGITS:
        return None
    if not (last_event_id.isascii() and last_event_id.isdigit()):
        return None
    return int(last_event_id)
