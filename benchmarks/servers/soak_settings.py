"""Settings of the soak benchmark's server: the demo project's, on ``DATABASE_URL``, plus the soak's two endpoints."""

import os

os.environ.setdefault("SECRET_KEY", "benchmark-only-not-secret")  # the demo refuses to start without one
from project.settings import *

DEBUG = False
ROOT_URLCONF = "benchmarks.servers.soak_urls"
