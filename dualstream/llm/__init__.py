"""OpenAI-compatible chat endpoints from one async generator of tokens.

The proxy to an upstream API lives in ``dualstream.llm.proxy``: it needs httpx.
"""

from .protocol import (
    ChatRequest,
    Completion,
    DataOnlySSERenderer,
    Delta,
    LLMError,
    StreamChunk,
    Usage,
    completion_from_chunks,
    merge_delta,
    message_text,
)
from .views import ChatCompletionView, ModelListView, OpenAIView

__all__ = [
    "ChatCompletionView",
    "ChatRequest",
    "Completion",
    "DataOnlySSERenderer",
    "Delta",
    "LLMError",
    "ModelListView",
    "OpenAIView",
    "StreamChunk",
    "Usage",
    "completion_from_chunks",
    "merge_delta",
    "message_text",
]
