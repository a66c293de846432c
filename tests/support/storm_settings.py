"""Settings of the storm tests' uvicorn subprocess: the tests' settings, on the database in ``STORM_DATABASE_URL``.

tests/e2e/test_storm.py creates that database (a SQLite file in a temporary directory, or a PostgreSQL
database of its own), migrates and seeds it before it starts the server.
"""

from tests.support.settings import *
from tests.support.settings import env

# Only this database: the tests' in-memory SQLite would be a different one in every thread.
DATABASES = {"default": {**env.db_url("STORM_DATABASE_URL"), "CONN_MAX_AGE": 0}}

# Broadcast on Redis where the suite has one (the keys under the run's prefix, deleted at the end), else in memory.
if env.str("TEST_REDIS_URL", default=""):
    DUALSTREAM = {
        "BROADCAST": {
            "BACKEND": "redis",
            "URL": env.str("TEST_REDIS_URL"),
            "PREFIX": env.str("BROADCAST_TEST_PREFIX", default="dualstream-test:storm:"),
        }
    }
