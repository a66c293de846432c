"""The demo's URLs, and what the soak benchmark needs besides: events that carry their send time, and a report.

- ``soak/clock/``: ``{"sent": <time.monotonic()>}`` every ``?interval=`` ms (default 200), endless; the
  client (same machine, same system-wide clock) subtracts it from the time the event arrived.
- ``soak/report/``: the server loop's asyncio task count and the process's thread count.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from dualstream import DualModeView


class Clock(DualModeView):
    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        interval = int(request.GET.get("interval", 200)) / 1000
        while True:
            yield {"sent": time.monotonic()}
            await asyncio.sleep(interval)


async def report(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"tasks": len(asyncio.all_tasks()), "threads": threading.active_count()})


urlpatterns = [
    path("soak/clock/", Clock.as_view()),
    path("soak/report/", report),
    path("", include("project.demo.urls")),
]
