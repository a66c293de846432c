"""Compact JSON for one item at a time: the per-item cost of every streamed mode.

``JSONEncoder.encode()`` builds a new C encoder on each call, work that does
not depend on the value: for a stream of small items (rows of a queryset) it
is paid per row (``docs/performance.md`` has the figures). ``compact_dumps()``
builds it once per response and reuses it. The output is ``encode()``'s, byte
for byte.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _json_encoder
from typing import Any

#: A JSON encoder's ``encode``: value -> JSON text.
Dumps = Callable[[Any], str]


def compact_dumps(encoder_class: type[json.JSONEncoder]) -> Dumps:
    """Value -> compact JSON text (``ensure_ascii=False``, no spaces), with ``encoder_class``'s ``default()``."""
    encoder = encoder_class(ensure_ascii=False, separators=(",", ":"))
    make_encoder = getattr(_json_encoder, "c_make_encoder", None)  # None where the C accelerator is missing
    cls = type(encoder)
    # Only the stock encode()/iterencode() are known to be what the C encoder does.
    if (
        make_encoder is None
        or cls.encode is not json.JSONEncoder.encode
        or cls.iterencode is not json.JSONEncoder.iterencode
    ):
        return encoder.encode
    encode_string = _json_encoder.encode_basestring
    markers: dict[int, Any] | None = {} if encoder.check_circular else None
    encode = make_encoder(
        markers, encoder.default, encode_string, None, ":", ",", encoder.sort_keys, encoder.skipkeys, encoder.allow_nan
    )

    def dumps(value: Any) -> str:
        if isinstance(value, str):
            return encode_string(value)  # as encode() does: the C encoder takes no top-level str
        try:
            return "".join(encode(value, 0))
        except BaseException:
            if markers:
                markers.clear()  # a failure midway leaves its containers marked as "being encoded"
            raise

    return dumps


#: Stands for a document's items while it is encoded around them (``around_items()``).
ITEMS_MARKER = "\0dualstream-items\0"


def around_items(dumps: Dumps, document: Any) -> tuple[str, str] | None:
    """The JSON text of ``document`` before and after its list ``[ITEMS_MARKER]``; None if it holds no such list."""
    opening, found, closing = dumps(document).partition(dumps([ITEMS_MARKER]))
    return (opening, closing) if found else None


def encode_document(dumps: Dumps, document: Any, items: list[Any]) -> str:
    """``dumps(document)``, with ``items`` encoded one call per item where the document holds that list itself.

    The same text as one call, cut into short calls: run in a thread, each call
    gives the GIL back to the event loop, where one call over a large document
    would keep it to the end. ``items`` is looked for at the document's top:
    the document itself, or one of its values (``{"items": items}``); elsewhere
    the document is encoded in one call.
    """
    if document is items:
        opening, closing = "", ""
    else:
        keys = [key for key, value in document.items() if value is items] if isinstance(document, dict) else []
        split = around_items(dumps, {**document, keys[0]: [ITEMS_MARKER]}) if keys else None
        if split is None:
            return dumps(document)
        opening, closing = split
    return opening + "[" + ",".join([dumps(item) for item in items]) + "]" + closing
