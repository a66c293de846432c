"""The suite's databases: SQLite always, PostgreSQL as a second alias when ``TEST_POSTGRES_URL`` names a server.

Tests parametrized with ``on_each_database`` take the alias as ``alias``; the PostgreSQL variant is
end to end (a server over the network) and skips without one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from tests.models import Sample
from tests.support.queryset_views import FIELDS

POSTGRES = "postgres" in settings.DATABASES
NO_POSTGRES = "TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (CI sets it)"
BOTH = ["default", "postgres"] if POSTGRES else ["default"]
postgres_only = [
    pytest.mark.skipif(not POSTGRES, reason=NO_POSTGRES),
    pytest.mark.django_db(transaction=True, databases=BOTH),
    pytest.mark.e2e,
]
on_each_database = pytest.mark.parametrize(
    "alias",
    [
        pytest.param("default", id="sqlite", marks=pytest.mark.django_db(transaction=True)),
        pytest.param("postgres", id="postgres", marks=postgres_only),
    ],
)


def seed(alias: str, rows: int) -> list[dict[str, Any]]:
    """Top the samples on ``alias`` up to ``rows``; return them as JSON would carry them, in id order."""
    Sample.top_up(alias, rows)
    values = Sample.objects.using(alias).order_by("id").values(*FIELDS)
    return json.loads(json.dumps(list(values), cls=DjangoJSONEncoder))


def wait_for_postgres(condition: Callable[[], bool], timeout: float = 5) -> bool:
    """Poll an outside process (PostgreSQL) until ``condition`` holds: nothing in this process can be told of it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
