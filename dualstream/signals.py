"""Django signals dualstream sends."""

from django.dispatch import Signal

#: Sent once when a stream ends, after ``produce()``'s ``finally`` has run, with the keyword
#: arguments ``request``, ``reason`` (an ``EndReason``, a ``str``: ``"completed"``, ``"client_gone"``,
#: ``"send_timeout"``, ``"max_duration"``, ``"shutdown"``, ``"reconnect"``, ``"error"`` or ``"head"``), ``items``
#: (how many ``produce()`` yielded), ``duration`` (seconds) and ``error`` (the exception, or None).
#: The sender is the view class. Sent with ``asend()``: a sync receiver runs in a thread.
stream_finished = Signal()
