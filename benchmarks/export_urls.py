"""The export benchmark's endpoints: the demo's export, and the two ways it is compared with.

- ``naive/``: what a view does without streaming: ``JsonResponse(list(qs.values()))``.
- ``plain/``: a ``DualModeView`` whose ``produce()`` is a bare ``qs.aiterator()`` loop, to show
  that the plain way is memory-flat too (it only lacks the explicit cursor close).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from dualstream import DualModeView
from project.demo.exports import ReadingExport
from project.demo.models import Reading


def naive(request: HttpRequest) -> JsonResponse:
    return JsonResponse(list(Reading.objects.order_by("id").values("id", "sensor", "taken_at", "value")), safe=False)


class PlainExport(DualModeView):
    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for row in Reading.objects.order_by("id").values("id", "sensor", "taken_at", "value").aiterator():
            yield row


urlpatterns = [
    path("naive/", naive),
    path("plain/", PlainExport.as_view()),
    path("buffered/", ReadingExport.as_view(batch_streaming=False)),
    path("", include("project.demo.urls")),
]
