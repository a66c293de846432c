"""The demo's settings, plus the test views' URLconf. GZipMiddleware stays on: streams must survive it."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "tests.urls"
DEBUG = False
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
# PostgreSQL, as a second alias, when a server is named (CI sets it): the tests for server-side
# cursors use it, and skip without it. Django runs them on the test database "test_<name>".
if env.str("TEST_POSTGRES_URL", default=""):  # noqa: F405
    DATABASES["postgres"] = {**env.db_url("TEST_POSTGRES_URL"), "CONN_MAX_AGE": 0}  # noqa: F405
DUALSTREAM = {}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
