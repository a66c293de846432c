"""The demo endpoints: each one is a ``DualModeView`` answering JSON, SSE and NDJSON."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpRequest
from django.views.generic import TemplateView

from dualstream import DualModeView, Event, Mode, Reconnect, int_id


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
        last = int_id(self.last_event_id)  # anything but a short digit string: start from the top
        start = total if last is None else min(total, last - 1)
        for n in range(start, -1, -1):
            if n != start:
                await asyncio.sleep(interval)
            yield Event({"n": n, "total": total, "done": round(100 * (total - n) / total)}, id=str(n))


class ReconnectPageView(TemplateView):
    template_name = "demo/reconnect.html"


class ErrorsPageView(TemplateView):
    template_name = "demo/errors.html"


def resume_point(view: DualModeView, count: int) -> int:
    """The number of the last event the client saw (0: none), from ``Last-Event-ID`` or ``?lastEventId=``.

    An id that is not an event number is the client's error (400), quoted only in part.
    """
    raw = view.last_event_id
    if raw is None:
        return 0
    last = int_id(raw)
    if last is None:
        raise BadRequest(f"Last-Event-ID must be an event number, not {raw[:20]!r}.")
    return min(last, count)


class FeedView(DualModeView):
    """Events 1..``?count=`` with ids, one every ``?interval=`` ms, resuming after the last id the client saw.

    Each event says where its connection resumed (``after``) and how the client told the server
    (``via``: ``"header"`` for the ``Last-Event-ID`` header a reconnecting ``EventSource`` sends,
    ``"query"`` for ``?lastEventId=``). The first event of each connection sets ``retry`` from
    ``?retry=`` (ms), the delay before a browser reconnects.

    ``?cut_every=N`` makes the server end each stream after N events *without* ``done``, as a
    network cut or a server restart would: the browser reconnects by itself and resumes.
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        count = int_param(request, "count", 30, 1, 1000)
        interval = int_param(request, "interval", 300, 0, 10_000) / 1000
        cut_every = int_param(request, "cut_every", 0, 0, 1000)
        retry = int_param(request, "retry", 1000, 0, 60_000)
        after = resume_point(self, count)
        via = None if not after else "header" if request.headers.get("Last-Event-ID") else "query"
        # Only a stream can be cut and resumed: a JSON or NDJSON answer is always whole.
        cut = cut_every if self.mode is Mode.SSE else 0
        for sent, n in enumerate(range(after + 1, count + 1)):
            if sent:
                await asyncio.sleep(interval)
            if cut and sent == cut:
                raise Reconnect(retry)  # no done: the browser reconnects and resumes, as after a cut
            yield Event(
                {"n": n, "of": count, "after": after, "via": via}, id=str(n), retry=retry if sent == 0 else None
            )


FAILURES = {
    "bug": lambda message: RuntimeError(f"demo bug: {message}"),  # a 500: the message stays on the server
    "forbidden": PermissionDenied,  # a 403: the message is written for the client
    "gone": Http404,  # a 404: likewise
}


class FlakyView(DualModeView):
    """``?items=`` readings, one every ``?interval=`` ms, then a failure: ``?failure=bug|forbidden|gone``.

    ``?items=0`` fails before the first item: an ordinary HTTP error in every mode. Later, a
    stream gets an ``error`` event and ends, while a batch answer is an error status, never a
    partial 200. ``?label=`` names the readings and ``?message=`` is the failure's message: both
    are the client's text, echoed back, which the demo page must render as text.
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        items = int_param(request, "items", 3, 0, 100)
        interval = int_param(request, "interval", 300, 0, 10_000) / 1000
        failure = request.GET.get("failure", "bug")
        if failure not in FAILURES:
            raise BadRequest(f"'failure' must be one of {', '.join(FAILURES)}.")
        label = request.GET.get("label", "reading")[:200]
        message = request.GET.get("message", "")[:500] or "The sensor stopped answering."
        for i in range(1, items + 1):
            if i > 1:
                await asyncio.sleep(interval)
            yield {"i": i, "text": f"{label} {i}"}
        await asyncio.sleep(interval)
        raise FAILURES[failure](message)
