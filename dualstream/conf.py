"""Settings for dualstream, with their defaults in one place.

Override any of them in ``settings.py``::

    DUALSTREAM = {"HEARTBEAT": 10.0, "SEND_TIMEOUT": 30.0}

Values are read on every access, so ``override_settings`` works in tests.
A view attribute declared as ``Setting("NAME")`` reads the setting unless a
subclass or ``as_view()`` overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.module_loading import import_string

T = TypeVar("T")


class Settings:
    """One settings dict of the project (``DUALSTREAM``, ``DUALSTREAM_LLM``...) over its defaults."""

    def __init__(self, setting_name: str, defaults: Mapping[str, Any]) -> None:
        self.setting_name = setting_name
        self.defaults = defaults

    def get(self, name: str) -> Any:
        """The value of one setting: the project's, or the default."""
        value = getattr(settings, self.setting_name, {}).get(name, self.defaults[name])
        if name.endswith("_ENCODER") and isinstance(value, str):
            value = import_string(value)
        return value


class Setting(Generic[T]):
    """A class attribute whose default is a setting, read per access so tests can override it.

    A plain class attribute would freeze the setting at import time. Assigning
    on an instance (``as_view(heartbeat=None)`` does so) shadows it.
    """

    def __init__(self, name: str, source: Settings | None = None) -> None:
        self.name = name
        self.source = source or DUALSTREAM

    @overload
    def __get__(self, instance: None, owner: type) -> T: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> T:
        value: T = self.source.get(self.name)
        return value


DUALSTREAM = Settings(
    "DUALSTREAM",
    {
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
        # Seconds a client may read nothing while output waits for it; then it is dropped. None: never.
        "SEND_TIMEOUT": 60.0,
        # Seconds after which a stream ends as at shutdown (a retry hint, no "done"). None: never.
        "MAX_DURATION": None,
        # Streams open at once in this process; beyond it a 503 with Retry-After. None: no limit.
        "MAX_STREAMS": None,
        # Items a buffered batch answer may hold; beyond it a 413 pointing to stream mode. None: no limit.
        "MAX_BATCH_ITEMS": None,
        # Milliseconds a client is told to wait before reconnecting when a stream is ended by the
        # server (shutdown, max_duration, send_timeout).
        "RECONNECT_RETRY": 1000,
        # Stop open streams when the server is told to stop (dualstream/shutdown.py).
        "HANDLE_SHUTDOWN": True,
    },
)


def get(name: str) -> Any:
    """The value of one ``DUALSTREAM`` setting: the project's, or the default."""
    return DUALSTREAM.get(name)
