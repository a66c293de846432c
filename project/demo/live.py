"""Live HTML: one view streamed to htmx 2, htmx 4 and Datastar, its rows rendered from a template.

``LiveFeed`` yields a ``Fragment`` per row (``templates/demo/live/_row.html``,
rendered with the request) and, for Datastar, ``Signals`` with the progress.
Its options come from Datastar's signals when the page sends them (the form on
the Datastar page), otherwise from the query string.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from django.core.exceptions import BadRequest
from django.http import HttpRequest
from django.views.generic import TemplateView

from dualstream import DualModeView, Mode, Reconnect
from dualstream.html import Fragment, Signals, read_signals, render_fragment

from .views import int_param, resume_point


def option(signals: Mapping[str, Any], request: HttpRequest, name: str, default: int, low: int, high: int) -> int:
    """A bounded integer from the signals, or else from the query string: a bad value is a 400."""
    if name not in signals:
        return int_param(request, name, default, low, high)
    value = signals[name]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)  # an <input> bound without __number sends text
    if type(value) is not int or not low <= value <= high:
        raise BadRequest(f"'{name}' must be an integer between {low} and {high}.")
    return value


class LiveFeed(DualModeView):
    """Rows 1..``count``, one every ``interval`` ms, each appended to ``#rows``; resumes after the last id.

    ``cut``: the first connection is ended by the server after that many rows (``Reconnect``),
    as a deploy would: every library reconnects with ``Last-Event-ID`` and the rows go on.
    ``fail``: the stream fails after that many rows (the page shows the error).
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        signals = read_signals(request) if self.mode is Mode.DATASTAR else {}
        count = option(signals, request, "count", 8, 1, 200)
        interval = option(signals, request, "interval", 300, 0, 10_000) / 1000
        cut = option(signals, request, "cut", 0, 0, 200)
        fail = option(signals, request, "fail", 0, 0, 200)
        label = str(signals.get("label") or request.GET.get("label") or "Row")[:60]
        after = resume_point(self, count)
        datastar = self.mode is Mode.DATASTAR
        if datastar and not after:  # a new run from the form: empty the list first (morphed by its id)
            yield Fragment('<ol id="rows" class="live-rows"></ol>')
        for n in range(after + 1, count + 1):
            if n > after + 1:
                await asyncio.sleep(interval)
            if cut and n == cut + 1 and not after:
                raise Reconnect(200)  # no done: clients come back with Last-Event-ID and resume
            if fail and n == fail + 1:
                raise RuntimeError("the demo feed failed on purpose")
            context = {"n": n, "count": count, "label": label}
            yield await render_fragment(request, "demo/live/_row.html", context, selector="#rows", mode="append", id=n)
            if datastar:
                yield Signals({"progress": n, "of": count})


class LivePageView(TemplateView):
    """The same feed on an htmx page (``?htmx=4`` for htmx 4; 2 by default) or a Datastar page."""

    library = "htmx"

    def get_template_names(self) -> list[str]:
        return [f"demo/live/{self.library}.html"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        query = self.request.GET.copy()
        context["htmx_version"] = 4 if query.pop("htmx", ["2"])[-1] == "4" else 2
        context["feed_query"] = query.urlencode()  # count, interval, cut, fail: passed on to the feed
        # The Datastar form's initial signals (the query's cut and fail kept, for the tests).
        context["signals"] = json.dumps(
            {
                "label": "Row",
                "count": int_param(self.request, "count", 8, 1, 200),
                "interval": int_param(self.request, "interval", 300, 0, 10_000),
                "cut": int_param(self.request, "cut", 0, 0, 200),
                "fail": int_param(self.request, "fail", 0, 0, 200),
                "progress": 0,
                "of": 0,
            }
        )
        return context
