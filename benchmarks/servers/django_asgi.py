"""The ASGI entry point of both Django servers."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.servers.django_settings")

from django.core.asgi import get_asgi_application

from . import gcstats  # noqa: F401  (GC pauses on SIGUSR1)

application = get_asgi_application()
