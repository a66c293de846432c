"""The demo site: its resumable views survive hostile ids, its pages say true things."""

from __future__ import annotations

import json
import os

import pytest
from django.core.management import call_command
from django.test import Client

from project.demo import llm

# Hostile resume points: too many digits for int(), a digit that int() refuses, not a number at all.
HOSTILE_IDS = pytest.mark.parametrize(
    "last_event_id",
    ["9" * 4301, "9" * 30, "²", "abc", "-1", "1e3"],
    ids=["4301-digits", "30-digits", "²", "abc", "-1", "1e3"],
)


def items(response) -> list[dict]:
    assert response.status_code == 200, response.content[:300]
    return json.loads(b"".join(response) if response.streaming else response.content)["items"]


@HOSTILE_IDS
def test_the_ticker_starts_from_the_top_after_a_hostile_resume_point(last_event_id: str) -> None:
    client = Client()
    counted = [
        item["n"] for item in items(client.get("/api/ticker/?from=3&interval=0", HTTP_LAST_EVENT_ID=last_event_id))
    ]
    assert counted == [3, 2, 1, 0]
    in_query = client.get("/api/ticker/", {"from": 3, "interval": 0, "lastEventId": last_event_id})
    assert [item["n"] for item in items(in_query)] == [3, 2, 1, 0]


def test_the_ticker_resumes_after_the_last_id_and_never_repeats_it() -> None:
    client = Client()
    assert [item["n"] for item in items(client.get("/api/ticker/?from=3&interval=0", HTTP_LAST_EVENT_ID="2"))] == [1, 0]
    assert items(client.get("/api/ticker/?from=3&interval=0", HTTP_LAST_EVENT_ID="0")) == []
    # An id above the top (from an earlier, longer countdown) resumes at the top of this one.
    assert [i["n"] for i in items(client.get("/api/ticker/?from=3&interval=0", HTTP_LAST_EVENT_ID="99"))] == [
        3,
        2,
        1,
        0,
    ]


@HOSTILE_IDS
def test_the_feed_refuses_a_hostile_resume_point_quoting_only_a_prefix(last_event_id: str) -> None:
    client = Client()
    for response in (
        client.get("/api/feed/?count=3&interval=0", HTTP_LAST_EVENT_ID=last_event_id),
        client.get("/api/feed/", {"count": 3, "interval": 0, "lastEventId": last_event_id}),
    ):
        body = b"".join(response) if response.streaming else response.content
        assert response.status_code < 500 and len(body) < 200, (response.status_code, body[:300])
        if response.status_code == 400:
            message = json.loads(body)["error"]["message"]
            assert message.startswith("Last-Event-ID must be an event number, not ")
        else:  # a server that ignores an overlong id altogether: then the feed starts from the top
            assert len(last_event_id) > 1000 and [i["n"] for i in json.loads(body)["items"]] == [1, 2, 3]


def test_the_feed_resumes_after_the_last_id() -> None:
    response = Client().get("/api/feed/?count=4&interval=0", HTTP_LAST_EVENT_ID="2")
    assert [(item["n"], item["after"], item["via"]) for item in items(response)] == [(3, 2, "header"), (4, 2, "header")]


def test_every_page_names_no_favicon_so_the_browser_asks_for_none() -> None:
    assert '<link rel="icon" href="data:,">' in Client().get("/").content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/export/"])
def test_terminal_examples_name_the_host_that_served_the_page(path: str) -> None:
    page = Client().get(path, HTTP_HOST="localhost:8123").content.decode()
    assert "127.0.0.1:8000" not in page
    assert "curl -s" in page and "http://localhost:8123/api/" in page


def test_the_home_page_gives_openai_clients_this_servers_base_url() -> None:
    assert 'base_url="http://localhost:8123/v1"' in Client().get("/", HTTP_HOST="localhost:8123").content.decode()


@pytest.mark.django_db
def test_the_export_page_has_the_breadcrumb_and_writes_the_row_count_as_its_counter_does() -> None:
    call_command("seed_demo", rows=1234, batch_size=1000, stdout=open(os.devnull, "w"))  # noqa: SIM115
    page = Client().get("/export/").content.decode()
    assert '<p class="crumbs"><a href="/">Demos</a> / Export</p>' in page
    assert "over the\n1,234 rows of the demo table" in page
    assert "1234" not in page.replace('max="1234"', "")  # the raw number only where the progress bar needs it


def test_no_demo_reply_claims_it_was_streamed_since_the_same_text_answers_without_streaming() -> None:
    replies = [llm.reply([{"role": "user", "content": f"Question number {i} about rivers"}]) for i in range(30)]
    assert len({reply.split(". ")[-1] for reply in replies}) == 3  # every closing sentence was drawn
    assert not any("was streamed" in reply for reply in replies)
