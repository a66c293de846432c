"""Producers with known behaviour, for the tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie

from dualstream import DualModeView, Event, Mode, int_id

from .probes import Probe, get_probe

ERRORS: dict[str, Exception] = {
    "404": Http404("No such thing."),
    "403": PermissionDenied("Not yours."),
    "400": BadRequest("Bad thing."),
    "suspicious": SuspiciousOperation("Suspicious thing."),
    "500": RuntimeError("internal detail 42"),
}


class ProbedView(DualModeView):
    """Reports the producer's life to the probe named by ``?probe=``."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        probe = get_probe(request.GET.get("probe"))
        with probe.running():
            async for item in self.items(request, probe):
                probe.count()
                yield item

    async def items(self, request: HttpRequest, probe: Probe) -> AsyncIterator[Any]:
        raise NotImplementedError
        yield


class CountView(ProbedView):
    """``?n=`` items ``{"i": i}``, ``?interval=`` seconds apart; ``?fail=KIND&after=K`` raises after K items."""

    async def items(self, request: HttpRequest, probe: Probe) -> AsyncIterator[Any]:
        n = int(request.GET.get("n", 3))
        interval = float(request.GET.get("interval", 0))
        fail, after = request.GET.get("fail"), int(request.GET.get("after", 0))
        for i in range(n):
            if fail and i == after:
                raise ERRORS[fail]
            if i and interval:
                await asyncio.sleep(interval)
            yield {"i": i}
        if fail and after >= n:
            raise ERRORS[fail]


@method_decorator([csrf_exempt, never_cache], name="dispatch")
class DecoratedDispatchView(CountView):
    """``CountView`` with Django's decorators on ``dispatch()``, as its docs show for class-based views."""


class MixedView(DualModeView):
    """Strings, objects, named events and values only DjangoJSONEncoder can write."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        import datetime
        import decimal
        import uuid

        yield "plain text"
        yield {
            "when": datetime.date(2026, 1, 2),
            "amount": decimal.Decimal("1.50"),
            "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        }
        yield Event("two\nlines", event="progress", id="7", retry=3000)
        yield Event({"k": [1, 2]})
        yield ["a", "b"]


class EndlessView(ProbedView):
    """Items as fast as the client takes them; ``?size=`` bytes each."""

    async def items(self, request: HttpRequest, probe: Probe) -> AsyncIterator[Any]:
        payload = "x" * int(request.GET.get("size", 10))
        i = 0
        while True:
            yield {"i": i, "payload": payload}
            i += 1
            await asyncio.sleep(0)


class EndlessStreamView(EndlessView):
    """An endless stream answers no batch: it would never end, and its buffer would grow without bound."""

    modes = (Mode.SSE, Mode.NDJSON)


class SlowStartView(ProbedView):
    """Silent for ``?delay=`` seconds, then one item; ``?fail=1`` raises instead."""

    async def items(self, request: HttpRequest, probe: Probe) -> AsyncIterator[Any]:
        await asyncio.sleep(float(request.GET.get("delay", 1)))
        if request.GET.get("fail"):
            raise RuntimeError("late failure")
        yield {"late": True}
        await asyncio.sleep(float(request.GET.get("delay", 1)))
        yield {"later": True}


class BadItemView(DualModeView):
    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if request.GET.get("first"):
            yield object()
        yield {"ok": 1}
        yield {"not json": object()}


class ResumableView(DualModeView):
    """Ten events with ids 0..9; resumes after ``last_event_id``."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        last = int_id(self.last_event_id)
        start = 0 if last is None else last + 1
        for i in range(start, 10):
            yield Event({"i": i}, id=str(i))


class PacedView(DualModeView):
    """``?n=`` events with ids, one every ``?interval=`` seconds: silences long enough for keep-alives."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        interval = float(request.GET.get("interval", 0.1))
        for i in range(int(request.GET.get("n", 5))):
            if i:
                await asyncio.sleep(interval)
            yield Event({"i": i}, id=str(i))


class TickView(DualModeView):
    """``{"i": i}`` every ``?interval=`` seconds, ``?n=`` times; ``?query_at=K`` counts content types at item K."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        from django.contrib.contenttypes.models import ContentType

        interval = float(request.GET.get("interval", 0.2))
        query_at = int(request.GET.get("query_at", -1))
        for i in range(int(request.GET.get("n", 1000))):
            if i:
                await asyncio.sleep(interval)
            item: dict[str, Any] = {"i": i}
            if i == query_at:
                item["content_types"] = await ContentType.objects.acount()
            yield item


class RetryView(ProbedView):
    """``?n=`` events with ids 0..n-1, the first one setting ``retry: ?retry=`` ms: for the browser's reconnects."""

    async def items(self, request: HttpRequest, probe: Probe) -> AsyncIterator[Any]:
        retry = int(request.GET.get("retry", 200))
        for i in range(int(request.GET.get("n", 3))):
            yield Event({"i": i}, id=str(i), retry=retry if i == 0 else None)


@ensure_csrf_cookie
def csrf_page(request: HttpRequest) -> HttpResponse:
    """A blank page that sets Django's ``csrftoken`` cookie, as any page rendering ``{% csrf_token %}`` would."""
    return HttpResponse("<!doctype html><meta charset=utf-8><title>csrf</title>")
