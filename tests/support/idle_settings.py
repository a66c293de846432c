"""tests/e2e/test_servers_idle.py's settings: the shutdown test's streams without middleware.

Django runs each middleware's hooks through a thread for every request: with the test suite's
seven, a stream took about 3 ms of server CPU to open, 1 ms without. That cost is not what the
thousand-stream test measures, and it would triple the test's time.
"""

from tests.support.shutdown_settings import *

MIDDLEWARE: list[str] = []
