"""The suite's fixtures and hooks; helpers live in tests/support.

What is end-to-end (the ``e2e`` marker) is decided here, so that no test can forget it: everything
under tests/e2e, and anywhere else a test that uses the live server or the Redis proxy. Tests that
run one body against a service and without one mark that parameter (``engine``'s "redis" below,
tests/unit/test_auth.py's "asgi", tests/unit/test_querysets.py's "postgres"). A test file anywhere
but tests/unit and tests/e2e stops the run: it would pass for a unit test whatever it does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.test import override_settings

from dualstream.asgi import get_asgi_application
from tests.support import llm_views, registries
from tests.support.broadcast import REDIS_URL, broadcast_settings, drop_run_keys, redis_reason
from tests.support.broadcast_proxy import Proxy
from tests.support.threadserver import serve

UNIT_DIR = Path(__file__).parent / "unit"
E2E_DIR = Path(__file__).parent / "e2e"
E2E_FIXTURES = frozenset({"live_url", "proxy"})


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The fast loop (``-m "not e2e"``) does not import what it would deselect whole: tests/e2e."""
    if " ".join(config.getoption("markexpr").split()) == "not e2e" and collection_path.is_relative_to(E2E_DIR):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    stray = sorted(
        {
            str(item.path)
            for item in items
            if not (item.path.is_relative_to(UNIT_DIR) or item.path.is_relative_to(E2E_DIR))
        }
    )
    if stray:  # a test file left beside them would run in the fast loop whatever it does
        raise pytest.UsageError(f"move these test files into tests/unit or tests/e2e: {', '.join(stray)}")
    for item in items:
        if item.path.is_relative_to(E2E_DIR) or E2E_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def fresh_registries() -> Iterator[None]:
    """Each test starts with dualstream's per-process state fresh, and leaves none of its own behind."""
    saved = registries.start_test()
    yield
    registries.end_test(saved)


@pytest.fixture(scope="session")
def live_url() -> Iterator[str]:
    """The base URL of uvicorn serving the test project's ASGI app on a free loopback port, as its ``asgi.py`` would."""
    with serve(ASGIStaticFilesHandler(get_asgi_application())) as url:
        yield url


@pytest.fixture(scope="session", autouse=True)
def _drop_test_keys() -> Iterator[None]:
    yield
    drop_run_keys()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.e2e)])
def engine(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test runs on both backends, each time with a fresh backend (and Redis keys of its own)."""
    if request.param == "redis" and (reason := redis_reason()):
        pytest.skip(reason)
    with override_settings(DUALSTREAM=broadcast_settings(request.param)):
        yield request.param


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    """A proxy in front of the suite's Redis that the test can cut, stall and slow down."""
    if reason := redis_reason():
        pytest.skip(reason)
    parts = urlsplit(REDIS_URL)
    p = Proxy((parts.hostname or "127.0.0.1", parts.port or 6379))
    yield p
    p.close()


@pytest.fixture
def counted() -> Iterator[list[tuple[str, bool]]]:
    """Where the counting chat model counts each prompt during the test (tests/support/llm_views.py)."""
    llm_views.COUNTED_IN.clear()
    yield llm_views.COUNTED_IN
    llm_views.COUNTED_IN.clear()
