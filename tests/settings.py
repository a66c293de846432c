"""The demo's settings, plus the test views' URLconf. GZipMiddleware stays on: streams must survive it."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
DEBUG = False
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
DUALSTREAM = {}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
