"""The body of a buffered batch answer: encoded in place when small, in the CPU pool (``offload``) when large."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .encoding import Dumps, encode_document
from .offload import offload

#: Items from which a batch document is built and encoded in the CPU pool. 500 items cost 0.2 ms on the
#: loop as small rows ({"i": 1, "msg": "hello"}), 0.6 ms as rows of 220 bytes of JSON; a hop to the pool
#: costs 50 us (docs/performance.md, "Loop stalls").
OFFLOAD_ITEMS = 500


async def batch_content(dumps: Dumps, document: Callable[[list[Any]], Any], items: list[Any]) -> bytes:
    """``dumps(document(items))`` as UTF-8, off the event loop for ``OFFLOAD_ITEMS`` items or more."""
    if len(items) < OFFLOAD_ITEMS:
        return dumps(document(items)).encode()  # one call into C: the fastest way, and short at this size
    return await offload(_encode_in_pieces, dumps, document, items)


def _encode_in_pieces(dumps: Dumps, document: Callable[[list[Any]], Any], items: list[Any]) -> bytes:
    return encode_document(dumps, document(items), items).encode()
