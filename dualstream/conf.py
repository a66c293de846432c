"""Settings for dualstream, with their defaults in one place.

Override any of them in ``settings.py``::

    DUALSTREAM = {"HEARTBEAT": 10.0}

Values are read on every access, so ``override_settings`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.module_loading import import_string

DEFAULTS: dict[str, Any] = {
    # Seconds of silence after which a keep-alive comment is sent; None disables.
    "HEARTBEAT": 15.0,
    # Mode used when neither a query parameter nor Accept decides: "json", "sse" or "ndjson".
    "DEFAULT_MODE": "json",
    # Encoder for every JSON value dualstream writes (a class or its dotted path).
    "JSON_ENCODER": DjangoJSONEncoder,
    # Bytes of encoded output that may wait for a slow client before produce() is paused.
    "BUFFER_SIZE": 64 * 1024,
    # Give back the thread Django keeps per request once a stream has started and holds no
    # database connection (dualstream/threads.py): thousands of idle streams, not thousands of threads.
    "RELEASE_REQUEST_THREAD": True,
    # Rows a QuerySetView fetches per hop to the database thread (QuerySet.aiterator()'s default).
    "CHUNK_SIZE": 2000,
    # Keys the OpenAI-compatible views (dualstream.llm) accept as "Authorization: Bearer <key>"; empty: open.
    "LLM_API_KEYS": (),
    # The OpenAI-compatible API that ChatCompletionProxyView forwards to, e.g. "https://api.openai.com/v1".
    "LLM_UPSTREAM_URL": "",
    # The key the proxy sends upstream (never the client's); empty: none.
    "LLM_UPSTREAM_API_KEY": "",
}


def get(name: str) -> Any:
    """The value of one setting: the project's, or the default."""
    value = getattr(settings, "DUALSTREAM", {}).get(name, DEFAULTS[name])
    if name == "JSON_ENCODER" and isinstance(value, str):
        value = import_string(value)
    return value


class Setting:
    """A view attribute whose default is a setting, so a subclass or ``as_view()`` can override it.

    A plain class attribute would freeze the setting at import time.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        return get(self.name)
