"""CPU-heavy request steps off the event loop (dualstream/offload.py): where they run, and that they give the same answers.

Small inputs run in place, on the loop's thread; large ones in the library's
pool (threads named ``dualstream-cpu``), in pieces that give the GIL back. That a stream on the
same server goes on meanwhile is tests/e2e/test_offload.py's.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from asgiref.sync import ThreadSensitiveContext
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client, RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from dualstream.batch import OFFLOAD_ITEMS, batch_content
from dualstream.encoding import compact_dumps, encode_document
from dualstream.html import render_fragment
from dualstream.llm import ChatRequest
from dualstream.llm.protocol import word_count
from dualstream.llm.views import OFFLOAD_BODY_SIZE
from dualstream.offload import REQUEST_THREAD_SLOTS
from project.demo.activity import MAX_BODY
from tests.support.offload import COUNTING, chat_body, in_pool, where
from tests.unit.test_encoding import json_values

# Same answers ----------------------------------------------------------------------------------


@given(st.text(alphabet="ab \n\t\u3000\x1c\x85\u2028"), st.integers(1, 9))
def test_words_are_counted_as_split_counts_them_whatever_the_slices(text: str, slice_size: int) -> None:
    assert word_count(text, slice_size) == len(text.split())


@given(st.lists(json_values, max_size=8))
def test_a_document_encoded_item_by_item_is_the_one_call_s_text(items: list[Any]) -> None:
    dumps = compact_dumps(DjangoJSONEncoder)
    documents = [
        items,
        {"items": items},
        {"object": "list", "data": items, "has_more": False},
        {"data": list(items)},  # a copy: not the list itself, so encoded in one call
        [items],
    ]
    for document in documents:
        assert encode_document(dumps, document, items) == dumps(document)


# Where they run ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "pooled"), [(OFFLOAD_ITEMS - 1, False), (OFFLOAD_ITEMS, True)])
def test_a_batch_document_is_built_and_encoded_in_the_pool_from_the_threshold_on(count: int, pooled: bool) -> None:
    places = []

    def document(items: list[Any]) -> Any:
        places.append(where())
        return {"total": len(items), "items": items}

    items = [{"i": i, "text": "é"} for i in range(count)]
    dumps = compact_dumps(DjangoJSONEncoder)
    content = asyncio.run(batch_content(dumps, document, items))
    assert content == dumps({"total": count, "items": items}).encode()
    assert [in_pool(place) for place in places] == [pooled]


@pytest.mark.parametrize(("size", "pooled"), [(OFFLOAD_BODY_SIZE // 2, False), (OFFLOAD_BODY_SIZE, True)])
def test_a_large_chat_request_is_parsed_and_counted_in_the_pool_and_a_small_one_in_place(
    size: int, pooled: bool, counted: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed_in = []
    parse = ChatRequest.parse.__func__  # type: ignore[attr-defined]

    def recording_parse(cls: type[ChatRequest], raw: bytes) -> ChatRequest:
        parsed_in.append(where())
        return parse(cls, raw)  # type: ignore[no-any-return]

    monkeypatch.setattr(ChatRequest, "parse", classmethod(recording_parse))
    body = chat_body(size)
    assert (len(body) >= OFFLOAD_BODY_SIZE) is pooled
    response = Client().post(COUNTING, body, content_type="application/json")
    assert response.status_code == 200
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == sum(len(m["content"].split()) for m in json.loads(body)["messages"])
    assert [in_pool(place) for place in parsed_in + counted] == [pooled, pooled]


@pytest.mark.parametrize(
    ("fields", "query", "accept", "content_type"),
    [
        pytest.param({"stream": True}, "", "", "text/event-stream", id="the body asks for a stream"),
        pytest.param({"stream": False}, "", "text/event-stream", "application/json", id="the body refuses one"),
        pytest.param({}, "", "text/event-stream", "text/event-stream", id="no 'stream': Accept decides"),
        pytest.param({"stream": True}, "?stream=maybe", "", "text/event-stream", id="the body wins over a bad query"),
    ],
)
def test_a_large_body_s_stream_field_decides_the_mode_as_a_small_one_s_does(
    fields: dict[str, Any], query: str, accept: str, content_type: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = Client(headers=headers).post(
        COUNTING + query, chat_body(OFFLOAD_BODY_SIZE, **fields), content_type="application/json"
    )
    assert (response.status_code, response["Content-Type"].split(";")[0]) == (200, content_type)


def test_a_large_body_that_is_not_json_is_a_400_in_openai_s_shape() -> None:
    body = chat_body(OFFLOAD_BODY_SIZE)[:-1]
    response = Client().post(COUNTING, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


def test_the_demo_refuses_a_large_publish_before_parsing_it() -> None:
    body = json.dumps({"who": "me", "text": "x" * MAX_BODY})
    response = Client().post("/api/activity/publish/", body, content_type="application/json")
    assert response.status_code == 400


class Busy:
    """Renders as "busy" after 50 ms of work, noting how many renders were at it at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def __str__(self) -> str:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self.lock:
            self.now -= 1
        return "busy"


def test_fragments_are_rendered_in_their_requests_threads_a_few_at_a_time() -> None:
    busy = Busy()

    async def one_request() -> str:
        async with ThreadSensitiveContext():  # as Django's handler runs each request: a thread of its own
            fragment = await render_fragment(RequestFactory().get("/"), "offload_busy.html", {"busy": busy})
            return fragment.html

    async def burst() -> list[str]:
        return await asyncio.gather(*(one_request() for _ in range(6)))

    assert asyncio.run(burst()) == ["busy\n"] * 6
    assert busy.most == REQUEST_THREAD_SLOTS  # not 1: in the requests' own threads; not 6: a few at a time
