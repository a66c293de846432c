"""The test suite's settings with only the shutdown test's streams (tests/e2e/test_shutdown.py)."""

from tests.support.settings import *

ROOT_URLCONF = "tests.support.shutdown_views"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # uvicorn's lines carry the worker's own clock (time.time()): the test that compares a worker's decision
    # to stop with the moment its streams ended must not take the decision's time from when the test's log
    # reader got to the line, which under load came after the streams' ends it caused.
    "formatters": {"stamped": {"format": "%(created).6f %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "stamped": {"class": "logging.StreamHandler", "formatter": "stamped"},
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "dualstream": {"level": "INFO"},
        "daphne": {"level": "INFO"},  # daphne: "Listening on"
        "uvicorn.error": {"handlers": ["stamped"], "level": "INFO", "propagate": False},
    },
}
