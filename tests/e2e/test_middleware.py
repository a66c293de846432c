"""Streams behind a sync-only middleware, which makes Django run the view through ``async_to_sync``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.test import override_settings
from httpx_sse import connect_sse

from tests.support.threadserver import serve


class SyncOnlyMiddleware:
    """The oldest kind of middleware (WhiteNoise 6 is one): Django runs it, and what follows, via a thread."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)


@pytest.fixture(scope="module")
def sync_middleware_url() -> Iterator[str]:
    from django.conf import settings

    with override_settings(MIDDLEWARE=[f"{__name__}.SyncOnlyMiddleware", *settings.MIDDLEWARE]):
        handler = ASGIHandler()  # loads the middleware now
    with serve(handler) as url:
        yield url


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hold", ["tick", "tick-hold"])  # the request's thread given back between items, or kept
def test_a_stream_queries_the_database_after_a_sync_middleware_returned(sync_middleware_url: str, hold: str) -> None:
    with (
        httpx.Client(base_url=sync_middleware_url, timeout=10) as client,
        connect_sse(client, "GET", f"/{hold}/?stream=1&interval=0.05&n=6&query_at=4") as source,
    ):
        events = list(source.iter_sse())
    assert [e.event for e in events] == ["message"] * 6 + ["done"]
    items = [json.loads(e.data) for e in events[:-1]]
    assert [item["i"] for item in items] == list(range(6))
    assert items[4]["content_types"] > 0
