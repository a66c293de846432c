"""Settings of the uvicorn processes in test_broadcast_live.py: the topic URLs, on Redis, with this run's prefix."""

from tests.support.settings import *
from tests.support.settings import env

ROOT_URLCONF = "tests.support.broadcast_urls"
DUALSTREAM = {
    "HEARTBEAT": 0.5,
    "BROADCAST": {
        "BACKEND": "redis",
        "URL": env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/0"),
        "PREFIX": env.str("BROADCAST_TEST_PREFIX", default="dualstream-test:"),
    },
}
