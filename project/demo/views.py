"""The demo endpoints: each one is a ``DualModeView`` answering JSON, SSE and NDJSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.views.generic import TemplateView

from dualstream import DualModeView, Event


def int_param(request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter; a bad value is the client's error (400), not ours."""
    raw = request.GET.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer, not {raw!r}.") from None
    if not low <= value <= high:
        raise BadRequest(f"'{name}' must be between {low} and {high}.")
    return value


class HomeView(TemplateView):
    template_name = "demo/home.html"


class TickerPageView(TemplateView):
    template_name = "demo/ticker.html"


class TickerView(DualModeView):
    """Counts down from ``?from=`` (default 10), one step every ``?interval=`` milliseconds.

    Each step carries its number as the SSE id, so a reconnecting browser resumes after it.
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        total = int_param(request, "from", 10, 1, 1000)
        interval = int_param(request, "interval", 300, 0, 10_000) / 1000
        start = total
        if self.last_event_id is not None and self.last_event_id.isdigit():
            start = min(total, int(self.last_event_id) - 1)
        for n in range(start, -1, -1):
            if n != start:
                await asyncio.sleep(interval)
            yield Event({"n": n, "total": total, "done": round(100 * (total - n) / total)}, id=str(n))
