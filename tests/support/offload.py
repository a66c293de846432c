"""What both halves of test_offload use: chat requests of a given size, and where a step ran."""

from __future__ import annotations

import json
import threading
from typing import Any

from dualstream.offload import THREAD_NAME_PREFIX
from tests.support import llm_views

COUNTING = "/llm/counting/v1/chat/completions"


def where() -> tuple[str, bool]:
    """This thread's name, and whether an event loop runs in it."""
    return threading.current_thread().name, llm_views.asyncio_running()


def in_pool(place: tuple[str, bool]) -> bool:
    name, on_a_loop = place
    return name.startswith(THREAD_NAME_PREFIX) and not on_a_loop


def chat_body(size: int, **fields: Any) -> str:
    """A chat request of about ``size`` bytes: many short messages, as a long conversation is."""
    messages = [{"role": "user", "content": "How do rivers carve canyons? " * 3} for _ in range(size // 110 + 1)]
    return json.dumps({"model": "any", "messages": messages, "tokens": 2, **fields})
