"""Views for tests/e2e/test_html.py: templates rendered into fragments, the ORM touched lazily, datastar-py's own events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from datastar_py.sse import ServerSentEventGenerator as SSE
from django.http import HttpRequest
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from dualstream import DualModeView
from dualstream.html import Fragment, Signals, read_signals, render_fragment
from tests.models import Sample

DATASTAR_ACCEPT = "text/event-stream, text/html, application/json"  # what Datastar v1 sends: the tests ask as it does


class SamplesFragment(DualModeView):
    """A template that iterates a queryset only while it is rendered, twice: before and after the first item."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        samples = Sample.objects.order_by("id")  # lazy: evaluated by the template, in the request's thread
        yield await render_fragment(request, "html_tests/samples.html", {"samples": samples}, selector="#s", id=1)
        yield await render_fragment(request, "html_tests/samples.html", {"samples": samples}, id=2)


class Mixed(DualModeView):
    """A Fragment, Signals, datastar-py's own events and a plain HTML string, in that order."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        yield Fragment("<p id='a'>A</p>\n<p id='b'>B</p>", selector="#list", mode="append", id="f1")
        yield Signals({"count": 5}, only_if_missing=True, id="s1")
        yield SSE.patch_elements("<div id='x'>X</div>", selector="#x", mode="inner", event_id="d1")
        yield SSE.patch_signals({"ok": True})
        yield "<p id='c'>C</p>"


class Echo(DualModeView):
    """The Datastar signals the request carries, as one Signals item."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        yield Signals(read_signals(request))


urlpatterns = [
    path("samples/", SamplesFragment.as_view()),
    path("mixed/", Mixed.as_view()),
    path("echo/", csrf_exempt(Echo.as_view())),  # Datastar sends no CSRF token unless told to (docs/html.md)
]
