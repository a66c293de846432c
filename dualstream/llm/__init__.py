"""OpenAI-compatible chat endpoints from one async generator of tokens.

Settings: ``DUALSTREAM["LLM"]`` (``dualstream.llm.conf``). The proxy to an upstream
API lives in ``dualstream.llm.proxy``: it needs httpx.
"""

from .protocol import (
    ChatRequest,
    Completion,
    DataOnlySSERenderer,
    Delta,
    LLMError,
    Usage,
    completion_from_chunks,
    merge_delta,
    message_text,
)
from .views import ChatCompletionView, ModelDetailView, ModelListView, ModelsView, OpenAIView

__all__ = [
    "ChatCompletionView",
    "ChatRequest",
    "Completion",
    "DataOnlySSERenderer",
    "Delta",
    "LLMError",
    "ModelDetailView",
    "ModelListView",
    "ModelsView",
    "OpenAIView",
    "Usage",
    "completion_from_chunks",
    "merge_delta",
    "message_text",
]
