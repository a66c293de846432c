"""``TopicView``: a topic as a dualstream endpoint, with no code."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from .. import DualModeView, Mode
from .errors import BroadcastUnavailable
from .publishing import history
from .subscription import subscribe


class TopicView(DualModeView):
    """Streams (SSE, NDJSON): the events after ``Last-Event-ID``, then live ones. Batch: the recent history.

    Set ``topic``, or override ``get_topic()`` (for a topic per object, from the URL's kwargs).
    A stream whose subscriber fell behind ends without ``done`` (``SubscriptionOverflow`` is a
    ``Reconnect``), so the browser resumes by replay.
    """

    topic: str | None = None
    #: Events a batch (JSON) answer holds: the latest ones, oldest first.
    history_size: int = 100
    #: Latest events a stream opened without ``Last-Event-ID`` starts with, before live ones.
    recent: int = 0

    def get_topic(self) -> str:
        if self.topic is None:
            raise ImproperlyConfigured(f"{type(self).__qualname__} needs a 'topic' or a get_topic() method.")
        return self.topic

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        topic = self.get_topic()
        if self.mode is Mode.JSON:
            for event in await history(topic, self.history_size):
                yield event
            return
        async with subscribe(topic, last_event_id=self.last_event_id, recent=self.recent) as events:
            async for event in events:
                yield event

    def get_error_body(self, exc: Exception) -> tuple[int, dict[str, Any]]:
        if isinstance(exc, BroadcastUnavailable):
            return 503, {"error": {"status": 503, "message": "Live updates are unavailable; try again shortly."}}
        return super().get_error_body(exc)
