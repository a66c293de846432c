"""Django settings for the export benchmark's server: the demo project's, on the database in ``DATABASE_URL``.

``EXPORT_BENCH_NO_SERVER_SIDE_CURSORS=1`` sets ``DISABLE_SERVER_SIDE_CURSORS``, as PgBouncer's transaction pooling needs.
"""

import os

os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")  # the demo refuses to start without one
from project.settings import *
from project.settings import DATABASES

DEBUG = False
ROOT_URLCONF = "benchmarks.export_urls"
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = os.environ.get("EXPORT_BENCH_NO_SERVER_SIDE_CURSORS") == "1"
