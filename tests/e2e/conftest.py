"""Fixtures of the end-to-end tests (the e2e marker is tests/conftest.py's, on everything here)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.servers import Certificate, make_certificate


@pytest.fixture
def http(live_url: str) -> Iterator[httpx.Client]:
    """An httpx client of the live server."""
    with httpx.Client(base_url=live_url, timeout=10) as client:
        yield client


@pytest.fixture
def server_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """Error records logged anywhere in the process (the live server runs in a thread of it)."""
    caplog.set_level(logging.WARNING)
    return lambda: [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
def fast_demo_model(settings: Any) -> None:
    """The demo model's words without the pause that makes streaming visible to a person."""
    settings.DEMO_LLM_TOKEN_DELAY = 0.002


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed CA and a certificate for localhost and 127.0.0.1, made for this run (the server tests')."""
    pytest.importorskip("trustme", reason="trustme makes the test certificates")
    return make_certificate(tmp_path_factory.mktemp("tls"))
