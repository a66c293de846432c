"""Topic endpoints for the broadcast tests: the topic comes from the URL."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest
from django.urls import include, path

from dualstream import DualModeView
from dualstream.broadcast import TopicView, subscribe

#: Set when a CustomFeed producer's ``finally`` has run, by topic.
FINISHED: dict[str, threading.Event] = {}


class TopicFeed(TopicView):
    def get_topic(self) -> str:
        return str(self.kwargs["name"])


class MyFeed(TopicView):
    """A topic per user, from a sync hook that reads ``request.user`` (lazy: it queries the session and the user)."""

    def get_topic(self) -> str:
        return f"user-{self.request.user.pk}"


async def own_topic_only(request: HttpRequest, topic: str) -> bool:
    """``AUTHORIZE`` for the tests: a user reads ``user-<own id>`` only."""
    user = await request.auser()
    return user.is_authenticated and topic == f"user-{user.pk}"


def own_topic_only_sync(request: HttpRequest, topic: str) -> bool:
    return request.user.is_authenticated and topic == f"user-{request.user.pk}"


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
    path("mine/", MyFeed.as_view()),
    path("topics/", include("dualstream.broadcast.urls")),
]
