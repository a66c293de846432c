"""docs/querysets.md's per-user export, as pasted, for a logged-in user under uvicorn, in every mode.

``get_queryset()`` reads ``self.request.user``, a lazy object that queries the session: called from
``produce()`` on the event loop it was a 500 (``SynchronousOnlyOperation``) for every logged-in user.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from dualstream.testing import fetch_stream
from tests.models import Customer, Order
from tests.support.docs_querysets_views import doc_classes

pytestmark = pytest.mark.django_db(transaction=True)  # the server reads the users from its own threads


@pytest.fixture
def sessions() -> dict[str, str]:
    """Alice has two paid orders and an unpaid one, Bob one paid order; their session cookies."""
    created = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cookies = {}
    for name, orders in {"alice": [("A-1", True), ("A-2", False), ("A-3", True)], "bob": [("B-1", True)]}.items():
        user = User.objects.create_user(name, password="x")
        customer = Customer.objects.create(user=user)
        for number, paid in orders:
            Order.objects.create(customer=customer, number=number, total=Decimal("12.50"), created=created, paid=paid)
        client = Client()
        client.force_login(user)
        cookies[name] = client.cookies["sessionid"].value
    return cookies


def test_the_doc_still_has_both_recipes() -> None:  # no database: pytest-django lets it run without one
    hooks = [{"get_queryset", "aget_queryset"} & set(vars(ns["OrderExport"])) for ns in doc_classes()]
    assert hooks == [{"get_queryset"}, {"aget_queryset"}]


@pytest.mark.parametrize("mode", ["json", "sse", "ndjson"])
@pytest.mark.parametrize("recipe", [0, 1], ids=["get_queryset", "aget_queryset"])
def test_the_per_user_export_answers_a_logged_in_user_their_own_paid_orders(
    live_url: str, sessions: dict[str, str], recipe: int, mode: str
) -> None:
    url = f"/docs/querysets/{recipe}/orders/export/?format={mode}"
    with httpx.Client(base_url=live_url, timeout=10) as http:
        for user, numbers in {"alice": ["A-1", "A-3"], "bob": ["B-1"]}.items():
            http.cookies.set("sessionid", sessions[user])
            received = fetch_stream(url, client=http)
            assert (received.status, received.end) == (200, "done"), received.error
            assert [row["number"] for row in received.items] == numbers
            assert {row["total"] for row in received.items} == {"12.50"}
        http.cookies.clear()
        anonymous = http.get(url)
    assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/accounts/login/")
