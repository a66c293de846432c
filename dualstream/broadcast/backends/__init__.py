"""The backend this process uses, built once per settings (``DUALSTREAM["BROADCAST"]``) and process, with its fan-out."""

from __future__ import annotations

import os
import threading
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import options
from ..fanout import Fanout, Inbox
from .base import RESET, Backend, Delivery, Item, Key, parse_id, reset_event, reset_item

BACKENDS = {
    "memory": "dualstream.broadcast.backends.memory.MemoryBackend",
    "redis": "dualstream.broadcast.backends.redis.RedisBackend",
}

_lock = threading.Lock()
_fanouts: dict[tuple[Any, ...], Fanout] = {}


def get_backend() -> Backend:
    """The backend the settings name; one per process (a forked child builds its own)."""
    return get_fanout().backend


def get_fanout() -> Fanout:
    """The fan-out to this process's subscribers, around the backend the settings name."""
    opts = options()
    cache_key = (os.getpid(), *sorted((k, repr(v)) for k, v in opts.items()))
    with _lock:
        fanout = _fanouts.get(cache_key)
        if fanout is None:
            path = BACKENDS.get(opts["BACKEND"], opts["BACKEND"])
            try:
                cls = import_string(path)
            except ImportError as exc:
                raise ImproperlyConfigured(
                    f'DUALSTREAM["BROADCAST"]["BACKEND"]: cannot import {path!r}: {exc}'
                ) from exc
            if not (isinstance(cls, type) and issubclass(cls, Backend)):
                raise ImproperlyConfigured(f'DUALSTREAM["BROADCAST"]["BACKEND"]: {path!r} is not a Backend subclass')
            fanout = _fanouts[cache_key] = Fanout(cls(opts))
        return fanout


def close_backends() -> None:
    """Close every backend this process built (tests; a worker's shutdown)."""
    with _lock:
        fanouts = list(_fanouts.values())
        _fanouts.clear()
    for fanout in fanouts:
        fanout.backend.close()


__all__ = [
    "BACKENDS",
    "RESET",
    "Backend",
    "Delivery",
    "Fanout",
    "Inbox",
    "Item",
    "Key",
    "close_backends",
    "get_backend",
    "get_fanout",
    "parse_id",
    "reset_event",
    "reset_item",
]
