"""A toy language model behind the OpenAI-compatible endpoints ``/v1/chat/completions`` and ``/v1/models``.

No download, no GPU, no randomness across runs: the reply is a few sentences
built from the words of the last user message, seeded by the conversation, so
the same conversation always gets the same reply. Tokens come one word at a
time, ``DEMO_LLM_TOKEN_DELAY`` seconds apart, so that streaming is visible.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any

from django.conf import settings
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView

from dualstream.llm import ChatCompletionView, ChatRequest, message_text
from dualstream.llm.views import OFFLOAD_BODY_SIZE
from dualstream.offload import offload_if

MODEL = "dualstream-demo"

_STOPWORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "let",
        "like",
        "me",
        "more",
        "most",
        "my",
        "no",
        "not",
        "now",
        "of",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "please",
        "say",
        "she",
        "should",
        "so",
        "some",
        "tell",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "up",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "explain",
        "show",
        "give",
        "write",
    ]
)

_OPENINGS = (
    "You asked about {topic}.",
    "Let's think about {topic} together.",
    "{Topic}: a good thing to wonder about.",
    "Here is my take on {topic}.",
)
_MIDDLES = (
    "The short answer is that {a} and {b} are closer than they look.",
    "Most of what matters about {a} shows up once you look at {b}.",
    "A useful way in is to ask what {a} would be without {b}.",
    "People often start with {a}, but {b} is where it gets interesting.",
)
_CLOSINGS = (
    "Ask the same question again and you will get the same answer.",
    "I am a demo model, so take this with a grain of salt.",
    "Streamed or not, every word of this reply came from the same generator.",
)


def reply(messages: Sequence[dict[str, Any]]) -> str:
    """The demo's answer to a conversation: three sentences about the last user message's key words.

    Its cost grows with the conversation (it is hashed whole): ``DemoChatView`` runs it off the event loop
    for a large one. Each step is a short call into C, so that, in a thread, the loop gets the GIL back between them.
    """
    prompt = next((message_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    keywords: dict[str, str] = {}  # lower case -> as first written; the first three are all it uses
    for match in _WORD.finditer(prompt):
        word = match.group()
        if len(word) > 2 and word.lower() not in _STOPWORDS:
            keywords.setdefault(word.lower(), word)
            if len(keywords) == 3:
                break
    topic = _join(list(keywords.values())) or "your message"
    a, b = [*keywords.values(), "the details", "the context"][:2]
    # A stable seed: Python's hash() of a str changes from one process to the next. The JSON text of the
    # conversation, hashed as the pure-Python encoder yields it: a string at a time, not in one long call.
    seed = hashlib.sha256()
    for chunk in _SEED_JSON.iterencode([(m.get("role"), message_text(m)) for m in messages]):
        seed.update(chunk.encode())
    rng = random.Random(seed.digest())
    return " ".join(
        (
            rng.choice(_OPENINGS).format(topic=topic, Topic=topic[:1].upper() + topic[1:]),
            rng.choice(_MIDDLES).format(a=a, b=b),
            rng.choice(_CLOSINGS),
        )
    )


_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")
_SEED_JSON = json.JSONEncoder()


def _join(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)


def tokens(text: str) -> list[str]:
    """``text`` cut before each space, so that the tokens join back to exactly ``text``."""
    return re.findall(r"\s*\S+", text)


class DemoChatView(ChatCompletionView):
    """The demo model as an OpenAI-compatible chat endpoint."""

    models = [MODEL]
    #: Seconds before each token; None: ``settings.DEMO_LLM_TOKEN_DELAY``.
    token_delay: float | None = None

    async def generate(self, chat: ChatRequest) -> AsyncGenerator[str, None]:
        delay = settings.DEMO_LLM_TOKEN_DELAY if self.token_delay is None else self.token_delay
        large = len(self.request.body) >= OFFLOAD_BODY_SIZE  # the library's rule for parsing it
        text = await offload_if(large, reply, chat.messages)
        for token in tokens(text):
            await asyncio.sleep(delay)
            yield token


@method_decorator(ensure_csrf_cookie, name="dispatch")
class ChatPageView(TemplateView):
    """The chat page. Its POSTs carry the session's cookies, so they send Django's CSRF token from this cookie."""

    template_name = "demo/chat.html"
