"""``/naive/<endpoint>`` and ``/ds/<endpoint>``; each Django server process is sent only its own prefix."""

from __future__ import annotations

from django.urls import path

from . import payloads
from .django_views import dualstream_view, naive

ENDPOINTS = {
    "fast": (payloads.small, None),
    "burst": (payloads.burst, None),
    "tick": (payloads.tick, payloads.TICK_SECONDS),
}

urlpatterns = [path(f"naive/{name}", naive(*spec)) for name, spec in ENDPOINTS.items()]
try:
    urlpatterns += [path(f"ds/{name}", dualstream_view(*spec)) for name, spec in ENDPOINTS.items()]
except ImportError:  # dualstream not importable yet: the naive server still runs
    pass
