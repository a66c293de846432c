"""The tabs demo: one clock feed read by every open tab through one shared stream (``stream(url, {shared: true})``).

Each event says how many server streams this process holds for the feed, so a visitor who opens the
page in many tabs sees one (two for a moment during a handover), not one per tab.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest
from django.views.generic import TemplateView

from dualstream import DualModeView, Event, int_id

from .views import int_param


class OpenStreams:
    """How many clock streams are open in this process, the most at once, and how many ended (their ``finally``)."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.open = self.peak = self.opened = self.closed = 0

    def enter(self) -> None:
        with self.changed:
            self.open += 1
            self.opened += 1
            self.peak = max(self.peak, self.open)
            self.changed.notify_all()

    def leave(self) -> None:
        with self.changed:
            self.open -= 1
            self.closed += 1
            self.changed.notify_all()


CLOCK_STREAMS = OpenStreams()


class TabsPageView(TemplateView):
    template_name = "demo/tabs.html"


class ClockView(DualModeView):
    """Event ``n`` (id ``n``) every ``?interval=`` ms, for ever; resumes after ``Last-Event-ID``.

    As a batch (JSON), the next ``?count=`` events only: an endless batch would never answer.
    ``streams`` in each event is how many clock streams this process holds at that moment.
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        interval = int_param(request, "interval", 500, 10, 10_000) / 1000
        count = None if self.mode.streams else int_param(request, "count", 10, 1, 1000)
        n = (int_id(self.last_event_id) or 0) + 1
        CLOCK_STREAMS.enter()
        try:
            while count is None or count > 0:
                yield Event({"n": n, "streams": CLOCK_STREAMS.open}, id=str(n))
                n += 1
                count = None if count is None else count - 1
                await asyncio.sleep(interval)
        finally:
            CLOCK_STREAMS.leave()
