"""``/naive/<endpoint>`` and ``/ds/<endpoint>``; each Django server process is sent only its own prefix."""

from __future__ import annotations

from django.urls import path

from . import payloads
from .django_views import dualstream_publish, dualstream_topic, dualstream_view, naive, naive_publish, naive_topic

ENDPOINTS = {
    "fast": (payloads.small, None),
    "burst": (payloads.burst, None),
    "tick": (payloads.tick, payloads.TICK_SECONDS),
}

urlpatterns = [path(f"naive/{name}", naive(*spec)) for name, spec in ENDPOINTS.items()]
urlpatterns += [path("naive/topic", naive_topic), path("naive/publish", naive_publish)]  # scenario F
try:
    urlpatterns += [path(f"ds/{name}", dualstream_view(*spec)) for name, spec in ENDPOINTS.items()]
    urlpatterns += [path("ds/topic", dualstream_topic()), path("ds/publish", dualstream_publish)]
except ImportError:  # dualstream not importable yet: the naive server still runs
    pass
