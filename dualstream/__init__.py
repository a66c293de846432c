"""dualstream: one Django view, answered as JSON or as a stream of Server-Sent Events."""

from .events import Event
from .negotiation import Mode, NegotiationError
from .renderers import Renderer
from .views import DualModeView

__all__ = ["DualModeView", "Event", "Mode", "NegotiationError", "Renderer"]
