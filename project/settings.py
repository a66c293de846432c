"""Settings for the dualstream demo site, read from the environment (or an optional ``.env``)."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost", "[::1]"]),
    DATABASE_URL=(str, f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
)
environ.Env.read_env(BASE_DIR / ".env")  # optional; the real environment wins

DEBUG = env("DEBUG")
# No shared fallback key: `make run` generates one per run, and DEBUG gets a throwaway one per process.
SECRET_KEY = env.str("SECRET_KEY", default="") or (get_random_secret_key() if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: set it in the environment or .env (DEBUG=True uses a random one)."
    )
ALLOWED_HOSTS = env("ALLOWED_HOSTS")

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "servestatic",  # system checks of the SERVESTATIC_* settings
    "dualstream",
    "project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (dualstream.js, the demo's assets) under uvicorn, with no thread hop for other requests.
    "servestatic.middleware.ServeStaticMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {"default": env.db("DATABASE_URL")}
# Under ASGI a streaming request holds its connection until the stream ends; don't keep it longer.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve straight from the apps' and STATICFILES_DIRS' folders, so `make run` needs no collectstatic.
SERVESTATIC_USE_FINDERS = True

USE_TZ = True
TIME_ZONE = "UTC"

DUALSTREAM = {
    "HEARTBEAT": env.float("DUALSTREAM_HEARTBEAT", default=15.0),
}
# Broadcast (docs/broadcast.md): Redis Streams when REDIS_URL is set, so that every worker shares the
# topics; otherwise the memory backend, which is one process only.
REDIS_URL = env.str("REDIS_URL", default="")
DUALSTREAM["BROADCAST"] = {"BACKEND": "redis", "URL": REDIS_URL} if REDIS_URL else {"BACKEND": "memory"}
# The OpenAI-compatible endpoints (docs/llm.md): client keys, and the upstream a proxy forwards to.
DUALSTREAM["LLM"] = {
    "API_KEYS": env.list("LLM_API_KEYS", default=[]),
    "UPSTREAM_URL": env.str("LLM_UPSTREAM_URL", default=""),
    "UPSTREAM_API_KEY": env.str("LLM_UPSTREAM_API_KEY", default=""),
}
# Seconds between the demo model's tokens (project/demo/llm.py).
DEMO_LLM_TOKEN_DELAY = env.float("DEMO_LLM_TOKEN_DELAY", default=0.03)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
