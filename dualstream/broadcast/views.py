"""``TopicView``: a topic as a dualstream endpoint, with no code; ``URLTopicView``: the topic from the URL."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404, HttpRequest
from django.utils.module_loading import import_string

from .. import DualModeView, Mode
from .conf import options
from .errors import BroadcastUnavailable
from .publishing import history
from .subscription import subscribe
from .topics import check_topic


class TopicView(DualModeView):
    """Streams (SSE, NDJSON): the events after ``Last-Event-ID``, then live ones. Batch: the recent history.

    Set ``topic``, or override ``get_topic()`` / ``aget_topic()`` (a topic per object, from the URL's
    kwargs). Decide who may read it in ``authorize()``. A stream whose subscriber fell behind ends
    without ``done`` (``SubscriptionOverflow`` is a ``Reconnect``), so the browser resumes by replay.
    """

    topic: str | None = None
    #: Events a batch (JSON) answer holds: the latest ones, oldest first.
    history_size: int = 100
    #: Latest events a stream opened without ``Last-Event-ID`` starts with, before live ones.
    recent: int = 0

    def get_topic(self) -> str:
        """The topic this request reads. Called by ``aget_topic()`` in the request's thread: the ORM works here."""
        if self.topic is None:
            raise ImproperlyConfigured(f"{type(self).__qualname__} needs a 'topic' or a get_topic() method.")
        return self.topic

    async def aget_topic(self) -> str:
        """The topic this request reads: ``get_topic()``, run where the ORM works. Override it for async code."""
        return await sync_to_async(self.get_topic)()

    async def authorize(self, request: HttpRequest, topic: str) -> bool:
        """Whether this request may read ``topic``, its history as well as its events: everyone, by default.

        Called before anything is read; False answers a JSON 403 in every mode (raise ``Http404`` instead
        to hide that the topic exists). Django's async auth API is at hand: ``await request.auser()``,
        ``await user.ahas_perm(...)``, and ``dualstream.auth.require_user()``.
        """
        return True

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        try:
            topic = check_topic(await self.aget_topic())
        except ValueError:
            raise Http404("No such topic.") from None
        if not await self.authorize(request, topic):
            raise PermissionDenied("You may not read this topic.")
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


class URLTopicView(TopicView):
    """The topic named by the URL (``dualstream.broadcast.urls``), readable only where ``AUTHORIZE`` allows it.

    ``DUALSTREAM["BROADCAST"]["AUTHORIZE"]`` is the dotted path of a function ``(request, topic) -> bool``,
    async or sync (a sync one runs in the request's thread). Without it, every topic is refused: a URL
    that any visitor can fill in must not open every topic to everyone.
    """

    def get_topic(self) -> str:
        return str(self.kwargs["topic"])

    async def aget_topic(self) -> str:
        return self.get_topic()  # from the URL: no database, no thread

    async def authorize(self, request: HttpRequest, topic: str) -> bool:
        path = options()["AUTHORIZE"]
        if path is None:
            return False
        check: Callable[[HttpRequest, str], bool | Awaitable[bool]] = import_string(path)
        if iscoroutinefunction(check):
            return bool(await check(request, topic))
        return bool(await sync_to_async(check)(request, topic))
