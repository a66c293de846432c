"""dualstream: one Django view, answered as JSON or as a stream of Server-Sent Events.

The OpenAI-compatible endpoints live in ``dualstream.llm``, broadcast in ``dualstream.broadcast``.
"""

from .events import Event, Reconnect
from .html import Fragment, Signals
from .lifecycle import end_streams
from .negotiation import Mode, NegotiationError
from .pump import EndReason
from .querysets import QuerySetView, aiterate
from .renderers import Renderer
from .resume import int_id
from .signals import stream_finished
from .views import DualModeView

__all__ = [
    "DualModeView",
    "EndReason",
    "Event",
    "Fragment",
    "Mode",
    "NegotiationError",
    "QuerySetView",
    "Reconnect",
    "Renderer",
    "Signals",
    "aiterate",
    "end_streams",
    "int_id",
    "stream_finished",
]
