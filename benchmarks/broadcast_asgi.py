"""The broadcast benchmark's workers: the site ``DJANGO_SETTINGS_MODULE`` names, with GC statistics.

``benchmarks/servers/gcstats.py`` reports its collections on SIGUSR1 and what it keeps per event
on SIGUSR2, and applies ``BENCH_GC_THRESHOLD``.
"""

from django.core.asgi import get_asgi_application

from benchmarks.servers import gcstats  # noqa: F401

application = get_asgi_application()
