"""Settings of the OpenAI-compatible views: ``DUALSTREAM["LLM"] = {"API_KEYS": ["sk-..."]}`` (``dualstream.conf``).

The separate ``DUALSTREAM_LLM`` setting of 0.1.0 is still read, with a
``DualstreamDeprecationWarning``, when ``DUALSTREAM`` has no ``"LLM"`` key.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..conf import DUALSTREAM, Rule


def _keys(value: Any) -> bool:
    # A lone str is a collection of one-character keys: refused.
    return (
        isinstance(value, Collection) and not isinstance(value, str | bytes) and all(isinstance(k, str) for k in value)
    )


DEFAULTS: dict[str, Any] = {
    # Keys the OpenAI-compatible views accept as "Authorization: Bearer <key>"; empty: open.
    "API_KEYS": (),
    # The OpenAI-compatible API that ChatCompletionProxyView forwards to, e.g. "https://api.openai.com/v1".
    "UPSTREAM_URL": "",
    # The key the proxy sends upstream (never the client's); empty: none.
    "UPSTREAM_API_KEY": "",
}

LLM = DUALSTREAM.section(
    "LLM",
    DEFAULTS,
    rules={"API_KEYS": Rule("a list of str keys (not one str)", _keys)},
    old_name="DUALSTREAM_LLM",
)
