"""The backend this process uses, built once per settings (``DUALSTREAM["BROADCAST"]``) and process."""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import options
from ..fanout import Fanout, Inbox
from .base import RESET, Backend, Item, Key, parse_id, reset_event, reset_item

BACKENDS = {
    "memory": "dualstream.broadcast.backends.memory.MemoryBackend",
    "redis": "dualstream.broadcast.backends.redis.RedisBackend",
}

_lock = threading.Lock()
_backends: dict[tuple[Any, ...], Backend] = {}


def get_backend() -> Backend:
    """The backend the settings name; one per process (a forked child builds its own)."""
    opts = options()
    cache_key = (os.getpid(), *sorted((k, repr(v)) for k, v in opts.items()))
    with _lock:
        backend = _backends.get(cache_key)
        if backend is None:
            path = BACKENDS.get(opts["BACKEND"], opts["BACKEND"])
            try:
                cls = import_string(path)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f'DUALSTREAM["BROADCAST"]["BACKEND"]: cannot import {path!r}: {exc}'
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise ImproperlyConfigured(f'DUALSTREAM["BROADCAST"]["BACKEND"]: {path!r} is not a Backend subclass')
            backend = _backends[cache_key] = cls(opts)
        return backend


def close_backends() -> None:
    """Close every backend this process built (tests; a worker's shutdown)."""
    with _lock:
        backends = list(_backends.values())
        _backends.clear()
    for backend in backends:
        backend.close()


__all__ = [
    "BACKENDS",
    "RESET",
    "Backend",
    "Fanout",
    "Inbox",
    "Item",
    "Key",
    "close_backends",
    "get_backend",
    "parse_id",
    "reset_event",
    "reset_item",
]
