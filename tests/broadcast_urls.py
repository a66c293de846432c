"""Topic endpoints for the broadcast tests: the topic comes from the URL."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest
from django.urls import path

from dualstream import DualModeView
from dualstream.broadcast import TopicView, subscribe

#: Set when a CustomFeed producer's ``finally`` has run, by topic.
FINISHED: dict[str, threading.Event] = {}


class TopicFeed(TopicView):
    def get_topic(self) -> str:
        return str(self.kwargs["name"])


class CustomFeed(DualModeView):
    """``subscribe()`` in a plain producer, as the docs show it: its ``finally`` must run on disconnect."""

    async def produce(self, request: HttpRequest, *args: Any, name: str, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            async for event in subscribe(name, last_event_id=self.last_event_id):
                yield event
        finally:
            FINISHED.setdefault(name, threading.Event()).set()


urlpatterns = [
    path("topic/<str:name>/", TopicFeed.as_view(heartbeat=0.2)),
    path("recent/<str:name>/", TopicFeed.as_view(recent=3, heartbeat=0.2)),
    path("custom/<str:name>/", CustomFeed.as_view(heartbeat=0.2)),
]
