"""The request's thread is given back while a stream waits in a subscription, its idle connections closed.

dualstream/threads.py and pump.parked() end to end through uvicorn in this process (the request
threads are this process's), with this module as the URLconf. The pieces alone are
tests/unit/test_thread_release.py's.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connections, transaction
from django.http import HttpRequest
from django.test import Client, override_settings
from django.urls import path

from dualstream import DualModeView
from dualstream.broadcast import TopicView, publish
from tests.support.databases import BOTH, postgres_only, wait_for_postgres
from tests.support.rawhttp import raw_request, read_until

ALIASES = ["default", pytest.param("postgres", marks=postgres_only)]
STREAMS = 50


class EmptyTopic(TopicView):
    """A topic per URL, read through the request's thread (``get_topic()`` is sync), as a per-user topic is."""

    def get_topic(self) -> str:
        return str(self.kwargs["name"])


class SessionTopic(EmptyTopic):
    """Readable by a logged-in user: ``authorize()`` reads the session and the user in the request's thread."""

    async def authorize(self, request: HttpRequest, topic: str) -> bool:
        return (await request.auser()).is_authenticated


#: What each step of AtomicSteps saw, by ``?key=``; its gate, opened by the test.
STEPS: dict[str, list[tuple[int, bool]]] = {}
GATES: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}


class AtomicSteps(DualModeView):
    """Three steps of one transaction, each in a synchronous call: a snapshot read across chunks, say.

    The first step opens the transaction before anything is sent; once the test has the
    headers it opens the gate, and the release is tried after the first item.
    """

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        key = request.GET["key"]
        GATES[key] = (asyncio.get_running_loop(), gate := asyncio.Event())
        steps = STEPS.setdefault(key, [])
        snapshot = _steps(request.GET["alias"])
        step = sync_to_async(next)
        steps.append(await step(snapshot))
        await gate.wait()
        for _ in range(2):
            yield {"step": len(steps)}
            steps.append(await step(snapshot))
        await sync_to_async(snapshot.close)()


def _steps(alias: str) -> Iterator[tuple[int, bool]]:
    with transaction.atomic(using=alias):
        while True:
            ContentType.objects.using(alias).count()
            yield threading.get_ident(), connections[alias].in_atomic_block


urlpatterns = [
    path("empty/<str:name>/", EmptyTopic.as_view(heartbeat=0.1)),
    path("quiet/<str:name>/", EmptyTopic.as_view(heartbeat=3600)),
    path("session/<str:name>/", SessionTopic.as_view(heartbeat=0.1)),
    path("atomic/", AtomicSteps.as_view(heartbeat=0.1)),
]


class ToAlias:
    """A router sending every model to ``ALIAS``: sessions and users on PostgreSQL for one test."""

    ALIAS = "postgres"

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return self.ALIAS

    db_for_write = db_for_read

    def allow_relation(self, *args: Any, **hints: Any) -> bool:
        return True


def threads_kept(before: set[threading.Thread], settle: float = 10.0) -> int:
    """Threads started since ``before`` and still alive once those on their way out have exited.

    A released thread exits on its own just after its stream let it go: each one is joined, all
    against one deadline, so a kept thread costs ``settle`` seconds once and a released one nothing.
    """
    deadline = time.monotonic() + settle
    born = [thread for thread in threading.enumerate() if thread not in before and thread.ident is not None]
    for thread in born:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in born)


def open_streams(live_url: str, paths: list[str], stack: ExitStack, cookie: str | None = None) -> list[socket.socket]:
    """Every request sent at once, then each read up to the end of its headers; the sockets stay open."""
    headers = {"Accept": "text/event-stream", **({"Cookie": f"sessionid={cookie}"} if cookie else {})}
    socks = [stack.enter_context(raw_request(live_url, p, headers)) for p in paths]
    for sock in socks:
        assert read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 200 ")
    return socks


def read_events(socks: list[socket.socket], topics: list[str]) -> None:
    """Publish one event to each topic and read it from its stream."""
    for topic in topics:
        publish(topic, {"for": topic})
    for sock, topic in zip(socks, topics):
        read_until(sock, f'"for":"{topic}"'.encode())


def test_subscribers_waiting_on_empty_topics_keep_no_thread(live_url: str) -> None:
    topics = [f"empty-{uuid.uuid4().hex[:8]}-{i}" for i in range(STREAMS)]
    with override_settings(ROOT_URLCONF=__name__), ExitStack() as stack:
        before = set(threading.enumerate())
        socks = open_streams(live_url, [f"/empty/{t}/" for t in topics], stack)
        # Each had a thread (get_topic() ran there); none is kept while it waits for an event.
        assert threads_kept(before) == 0
        read_events(socks, topics)


def test_a_subscriber_of_a_quiet_topic_has_its_headers_before_any_event(live_url: str) -> None:
    """Its producer parks in the subscription: the headers go then, not after a first item or a keep-alive
    interval (an hour here; before, the client waited that long for its response to start)."""
    topic = f"quiet-{uuid.uuid4().hex[:8]}"
    with override_settings(ROOT_URLCONF=__name__), ExitStack() as stack:
        (sock,) = open_streams(live_url, [f"/quiet/{topic}/"], stack)  # a read times out after 10 s
        read_events([sock], [topic])


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_a_stream_that_read_the_session_closes_its_connection_and_keeps_no_thread(live_url: str, alias: str) -> None:
    ToAlias.ALIAS = alias
    topics = [f"session-{uuid.uuid4().hex[:8]}-{i}" for i in range(STREAMS)]
    with override_settings(ROOT_URLCONF=__name__, DATABASE_ROUTERS=[f"{__name__}.ToAlias"]), ExitStack() as stack:
        client = Client()
        client.force_login(User.objects.create_user("alice", password="x"))
        cookie = client.cookies["sessionid"].value
        sessions = _pg_sessions() if alias == "postgres" else None
        before = set(threading.enumerate())
        socks = open_streams(live_url, [f"/session/{t}/" for t in topics], stack, cookie)
        assert threads_kept(before) == 0
        if sessions is not None:  # each stream's connection was closed: none idles on the server
            assert wait_for_postgres(lambda: _pg_sessions() <= sessions), (len(_pg_sessions()), len(sessions))
        read_events(socks, topics)


@pytest.mark.parametrize("alias", ALIASES)
@pytest.mark.django_db(transaction=True, databases=BOTH)
def test_a_stream_inside_a_transaction_keeps_its_thread_and_its_transaction(live_url: str, alias: str) -> None:
    key = uuid.uuid4().hex
    with override_settings(ROOT_URLCONF=__name__), ExitStack() as stack:
        (sock,) = open_streams(live_url, [f"/atomic/?key={key}&alias={alias}"], stack)
        loop, gate = GATES.pop(key)
        loop.call_soon_threadsafe(gate.set)  # the response has started: the release is tried after the next item
        read_until(sock, b"event: done")
    # Every step on one thread, inside the one transaction: the release was refused, not half done.
    steps = STEPS.pop(key)
    assert steps == [(steps[0][0], True)] * 3


def _pg_sessions() -> set[int]:
    """Backend pids of the other sessions on the PostgreSQL test database."""
    with connections["postgres"].cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {row[0] for row in cursor.fetchall()}
