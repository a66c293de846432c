"""django-eventstream under the broadcast benchmark's load: the demo site's settings, its events view on Redis.

The benchmark's workers run ``benchmarks.broadcast_asgi`` with ``DJANGO_SETTINGS_MODULE`` set to this
module: the same middleware and server as the dualstream run, django-eventstream 5's plain Django
async view (no Channels) at ``/events/`` for the benchmark's topic, and its multi-process mode
(``EVENTSTREAM_REDIS``: Redis pub/sub, one listener task per process). No storage is configured, so
it keeps no history and gives no replay.
"""

from django.urls import include, path

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "django_eventstream"]  # noqa: F405
ROOT_URLCONF = "benchmarks.broadcast_eventstream"
EVENTSTREAM_REDIS = {"host": "127.0.0.1", "port": 6379, "db": 15}
TOPIC = "demo-activity"

urlpatterns = [path("events/", include("django_eventstream.urls"), {"channels": [TOPIC]})]
