"""The ASGI entry points of both Django servers: each as its own documentation has a project's ``asgi.py``."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.servers.django_settings")

from django.core.asgi import get_asgi_application

import dualstream.asgi

from . import gcstats  # noqa: F401  (GC pauses on SIGUSR1)

#: The naive view's: Django's own.
application = get_asgi_application()
#: dualstream's (docs/deployment.md): Django's handler, whose streams' producers write their events themselves.
dualstream_application = dualstream.asgi.get_asgi_application()
