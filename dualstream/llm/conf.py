"""Settings of the OpenAI-compatible views, in their own dict: ``DUALSTREAM_LLM = {"API_KEYS": ["sk-..."]}``."""

from __future__ import annotations

from ..conf import Settings

LLM = Settings(
    "DUALSTREAM_LLM",
    {
        # Keys the OpenAI-compatible views accept as "Authorization: Bearer <key>"; empty: open.
        "API_KEYS": (),
        # The OpenAI-compatible API that ChatCompletionProxyView forwards to, e.g. "https://api.openai.com/v1".
        "UPSTREAM_URL": "",
        # The key the proxy sends upstream (never the client's); empty: none.
        "UPSTREAM_API_KEY": "",
    },
)
