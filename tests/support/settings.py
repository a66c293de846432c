"""The test suite's own settings: the library against the tests app, plus the demo for its end-to-end tests.

The demo app is installed only because tests/support/urls.py serves the demo's URLs too; library tests use
the models and views of ``tests``. GZipMiddleware stays on: streams must survive it. Sessions and
authentication are on as in a typical project, for the auth and CSRF tests.
"""

import environ

from tests.support.paths import ROOT

BASE_DIR = ROOT
env = environ.Env()

DEBUG = False
SECRET_KEY = "dualstream-tests-only"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]", "testserver"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "dualstream",
    "tests",
    "project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.support.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],  # the demo's pages
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
# PostgreSQL, as a second alias, when a server is named (CI sets it): the tests for server-side
# cursors use it, and skip without it. Django runs them on the test database "test_<name>".
if env.str("TEST_POSTGRES_URL", default=""):
    DATABASES["postgres"] = {**env.db_url("TEST_POSTGRES_URL"), "CONN_MAX_AGE": 0}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the demo's assets

USE_TZ = True
TIME_ZONE = "UTC"

DUALSTREAM: dict[str, object] = {}
# Seconds between the demo model's tokens (project/demo/llm.py).
DEMO_LLM_TOKEN_DELAY = 0.03

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
