"""The broadcast benchmark's workers: the site ``DJANGO_SETTINGS_MODULE`` names, with GC statistics.

``benchmarks/servers/gcstats.py`` reports its collections on SIGUSR1 and what it keeps per event
on SIGUSR2, and applies ``BENCH_GC_THRESHOLD``.
"""

from django.core.asgi import get_asgi_application

import dualstream.asgi
from benchmarks.servers import gcstats  # noqa: F401

#: django-eventstream's site: Django's own.
application = get_asgi_application()
#: dualstream's site, as its ``asgi.py`` has it.
dualstream_application = dualstream.asgi.get_asgi_application()
