"""The test suite's settings with only the shutdown test's streams (tests/e2e/test_shutdown.py)."""

from tests.support.settings import *

ROOT_URLCONF = "tests.support.shutdown_views"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"dualstream": {"level": "INFO"}, "daphne": {"level": "INFO"}},  # daphne: "Listening on"
}
