"""Django settings for the two Django servers (naive view and dualstream): DEBUG off, no database use.

The middleware is the demo project's stack, so both Django servers pay for what a real project has.
"""

from __future__ import annotations

import os

DEBUG = False
SECRET_KEY = "benchmark-only-not-secret"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["django.contrib.contenttypes", "dualstream"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if os.environ.get("BENCH_DJANGO_MIDDLEWARE") == "none":
    # run.py --no-middleware: each MiddlewareMixin hop to the request's thread shows in (D) time to first byte.
    MIDDLEWARE = []
ROOT_URLCONF = "benchmarks.servers.django_urls"
# Scenario F's TopicView: one process, no Redis (the memory backend is also the default).
DUALSTREAM = {"BROADCAST": {"BACKEND": "memory"}}
# Never opened: nothing here touches the database.
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": f"/tmp/dualstream-bench-{os.getpid()}.sqlite3"}
}
DATABASES["default"]["CONN_MAX_AGE"] = 0
USE_TZ = True
TIME_ZONE = "UTC"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
