"""Broadcast: one event published anywhere reaches every subscriber, on every worker, with exact replay.

    from dualstream.broadcast import publish, apublish, subscribe, TopicView

    event_id = publish("orders", {"id": 7})            # sync code
    event_id = await apublish("orders", {"id": 7})     # async code
    async for event in subscribe("orders", last_event_id=self.last_event_id): ...

See docs/broadcast.md. Settings: ``DUALSTREAM["BROADCAST"]`` (``dualstream.broadcast.conf``).
"""

from .backends.base import RESET, Backend
from .errors import BroadcastUnavailable, SubscriptionOverflow
from .publishing import apublish, history, publish
from .subscription import Subscription, subscribe
from .views import TopicView, URLTopicView

__all__ = [
    "RESET",
    "Backend",
    "BroadcastUnavailable",
    "Subscription",
    "SubscriptionOverflow",
    "TopicView",
    "URLTopicView",
    "apublish",
    "history",
    "publish",
    "subscribe",
]
