"""What a publisher or a subscriber can be told went wrong."""

from __future__ import annotations

from ..events import Reconnect


class BroadcastUnavailable(Exception):
    """The engine could not be reached in time: a publish failed, or an open stream waited too long for it."""


class SubscriptionOverflow(Reconnect):
    """A subscriber fell more live events behind than its buffer holds.

    A ``Reconnect``: its stream ends without ``done``, and the client resumes by replay.
    """

    def __init__(self) -> None:
        super().__init__()
        self.args = ("The subscriber fell too far behind the live events; reconnect to resume by replay.",)
