"""Broadcast against hostile input, and who may read a topic, on each engine (the Redis variant is end to end).

Data that cannot be encoded, topic names from the URL, thousands of subscribers cancelled at jittered
moments, the ``AUTHORIZE`` hook. Redis behind a proxy that fails is tests/e2e/test_broadcast_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import AsyncClient, Client, override_settings

from dualstream.broadcast import apublish, history, publish, subscribe
from dualstream.broadcast.backends import get_backend, get_fanout
from tests.support.broadcast import (
    TOPIC_URLS,
    broadcast_settings,
    wait_for,
)


@pytest.mark.parametrize("data", [{"text": "\ud800"}, "\udfff", float("nan"), [float("inf")]])
def test_data_that_cannot_be_encoded_is_refused_before_anything_is_written(engine: str, data: Any) -> None:
    with pytest.raises(ValueError, match="Cannot publish"):
        publish("poison", data)
    with pytest.raises(ValueError, match="Cannot publish"):
        asyncio.run(apublish("poison", data))
    assert asyncio.run(history("poison")) == []
    publish("poison", {"text": "fine \u00e9\U0001f600"})
    assert [e.data for e in asyncio.run(history("poison"))] == [{"text": "fine \u00e9\U0001f600"}]


@pytest.mark.django_db
def test_the_demo_publish_form_answers_400_to_a_lone_surrogate(engine: str) -> None:
    client = Client()
    url = "/api/activity/publish/"
    body = '{"who": "tab", "text": "\\ud800"}'
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert asyncio.run(history("demo-activity")) == []


@pytest.mark.parametrize("name", ["a%20b", "%C3%A9t%C3%A9", "x" * 201, "..", "a*", "-x"])
@pytest.mark.parametrize("query", ["", "?stream=1", "?format=ndjson"])
def test_an_invalid_topic_from_the_url_is_a_404_and_nothing_is_logged_as_an_error(
    engine: str, name: str, query: str, caplog: pytest.LogCaptureFixture
) -> None:
    with override_settings(**TOPIC_URLS):
        response = Client().get(f"/topic/{name}/{query}")
    assert response.status_code == 404
    assert json.loads(b"".join(response.streaming_content) if response.streaming else response.content)["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def backend_bookkeeping(backend: Any) -> dict[str, int]:
    """What the Redis backend keeps per topic, read in its own loop."""

    async def read() -> dict[str, int]:
        return {
            name: len(getattr(backend, name))
            for name in ("_followed", "_confirming", "_dirty", "_joining", "_inflight")
        }

    return asyncio.run_coroutine_threadsafe(read(), backend._started_loop()).result(10)


def test_churn_leaves_no_subscriber_task_thread_or_topic_behind(engine: str) -> None:
    """Thousands of subscribers cancelled at jittered moments, among them the one where a join completes."""
    rng = random.Random(20)
    visits, topics = 2_000, 40
    threads_before = threading.active_count()

    async def main() -> None:
        ids = [await apublish(f"churn-{t}", {"t": t}) for t in range(topics)]

        async def visit(k: int) -> None:
            resume = ids[k % topics] if k % 3 else None
            async for _ in subscribe(f"churn-{k % topics}", last_event_id=resume):
                pass

        tasks: list[asyncio.Task[None]] = []
        for k in range(visits):
            tasks.append(asyncio.ensure_future(visit(k)))
            for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8, 13])):
                await asyncio.sleep(0)  # a jitter counted in turns of the loop, not in time
            tasks[rng.randrange(len(tasks))].cancel()
            if k % 50 == 0:
                await apublish(f"churn-{rng.randrange(topics)}", {"k": k})
        for task in tasks:
            task.cancel()
        done, pending = await asyncio.wait(tasks, timeout=30)
        assert not pending, f"{len(pending)} subscribers kept running after being cancelled"
        assert all(task.cancelled() for task in done), [t.exception() for t in done if not t.cancelled()][:3]
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    backend = get_backend()
    wait_for(lambda: get_fanout().topics() == [])
    if engine == "redis":
        wait_for(lambda: not any(backend_bookkeeping(backend).values()))
    assert threading.active_count() <= threads_before + 1  # the backend's own thread, if it is new


@pytest.mark.django_db(transaction=True)
def test_url_topics_are_refused_unless_authorize_allows_them(engine: str) -> None:
    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="x")
    anonymous, client = Client(), Client()
    client.force_login(alice)
    with override_settings(**TOPIC_URLS, DUALSTREAM=broadcast_settings(engine)):
        assert client.get(f"/topics/user-{alice.pk}/").status_code == 403  # no AUTHORIZE: nobody
    for check in ["own_topic_only", "own_topic_only_sync"]:
        settings = broadcast_settings(engine, AUTHORIZE=f"tests.support.broadcast_urls.{check}")
        with override_settings(**TOPIC_URLS, DUALSTREAM=settings):
            publish(f"user-{alice.pk}", {"hello": "alice"})
            refused = anonymous.get(f"/topics/user-{alice.pk}/?stream=1")
            assert refused.status_code == 403 and refused["Content-Type"] == "application/json"
            assert client.get(f"/topics/user-{alice.pk}/").json() == {"items": [{"hello": "alice"}]}
            assert client.get(f"/topics/user-{bob.pk}/").status_code == 403
            assert client.get("/topics/a*b/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_sync_get_topic_may_read_request_user_in_async_code(engine: str) -> None:
    """``get_topic()`` reading ``request.user`` (lazy: a session and a user query) is run where the ORM works."""
    alice = User.objects.create_user("alice")
    publish(f"user-{alice.pk}", {"hello": "alice"})

    async def main() -> Any:
        client = AsyncClient()
        await client.aforce_login(alice)
        return await client.get("/mine/")

    with override_settings(**TOPIC_URLS):
        response = asyncio.run(main())
    assert response.status_code == 200, response.content[:300]
    assert response.json() == {"items": [{"hello": "alice"}]}
