"""dualstream: one Django view, answered as JSON or as a stream of Server-Sent Events."""

from .events import Event
from .negotiation import Mode, NegotiationError
from .renderers import Renderer
from .views import DualModeView
from .llm import (  # after .views, which it builds on
    ChatCompletionView,
    ChatRequest,
    DataOnlySSERenderer,
    Delta,
    LLMError,
    ModelListView,
    StreamChunk,
    Usage,
    message_text,
)
from .querysets import QuerySetView, aiterate  # after .views, which it builds on

__all__ = [
    "ChatCompletionView",
    "ChatRequest",
    "DataOnlySSERenderer",
    "Delta",
    "DualModeView",
    "Event",
    "LLMError",
    "Mode",
    "ModelListView",
    "NegotiationError",
    "QuerySetView",
    "Renderer",
    "StreamChunk",
    "Usage",
    "aiterate",
    "message_text",
]
