"""Django's own auth mixins and decorators on dualstream views, in every mode, under ASGI (uvicorn) and WSGI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tests.support.auth_views import Items, LoginRequired

MODES = ["json", "sse", "ndjson"]
pytestmark = pytest.mark.django_db(transaction=True)
Fetch = Callable[..., tuple[int, dict[str, str], str]]


@pytest.fixture
def users() -> dict[str, User]:
    alice = User.objects.create_user("alice", password="x")
    bob = User.objects.create_user("bob", password="x", is_staff=True)
    bob.user_permissions.add(Permission.objects.get(codename="view_user"))
    return {"alice": alice, "bob": bob}


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


# Each server reads the users on connections of its own threads: they must be committed.
@pytest.fixture(params=[pytest.param("asgi", marks=pytest.mark.e2e), "wsgi"])  # asgi: over the live server
def fetch(request: pytest.FixtureRequest, users: dict[str, User]) -> Iterator[Fetch]:
    """``fetch(path, mode, username)`` -> status, headers, body; through uvicorn or Django's WSGI handler."""
    cookies = {name: session_cookie(user) for name, user in users.items()}
    if request.param == "wsgi":

        def via_wsgi(
            path: str, mode: str, user: str | None, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], str]:
            client = Client()
            if user:
                client.cookies["sessionid"] = cookies[user]
            response = client.get(f"/auth/{path}?format={mode}", headers=headers)
            body = b"".join(response) if response.streaming else response.content
            response.close()
            return response.status_code, {k.lower(): v for k, v in response.headers.items()}, body.decode()

        yield via_wsgi  # type: ignore[misc]
    else:
        live_url = request.getfixturevalue("live_url")
        with httpx.Client(base_url=live_url, timeout=10) as http:

            def via_asgi(
                path: str, mode: str, user: str | None, headers: dict[str, str] | None = None
            ) -> tuple[int, dict[str, str], str]:
                http.cookies.clear()
                if user:
                    http.cookies.set("sessionid", cookies[user])
                response = http.get(f"/auth/{path}?format={mode}", headers=headers)
                return response.status_code, dict(response.headers), response.text

            yield via_asgi  # type: ignore[misc]


def items_of(mode: str, body: str) -> list[Any]:
    if mode == "json":
        return list(json.loads(body)["items"])
    if mode == "ndjson":
        return [json.loads(line) for line in body.splitlines()]
    return [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]


def assert_json_403(status: int, headers: dict[str, str], body: str) -> None:
    assert status == 403
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["status"] == 403


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("path", "user", "expected"),
    [
        ("login-required/", None, "login"),
        ("login-required/", "alice", "alice"),
        ("login-required-403/", None, 403),
        ("permission-required/", "alice", 403),
        ("permission-required/", "bob", "bob"),
        ("staff-only/", "alice", 403),
        ("staff-only/", "bob", "bob"),
        ("checked-in-produce/", None, 403),
        ("checked-in-produce/", "alice", 403),
        ("decorated-login/", None, "login"),
        ("decorated-login/", "alice", "alice"),
        ("method-decorated-login/", None, "login"),
        ("method-decorated-login/", "alice", "alice"),
        ("decorated-permission/", "alice", 403),
        ("decorated-permission/", "bob", "bob"),
        ("decorated-test/", "alice", "login"),
        ("decorated-test/", "bob", "bob"),
    ],
)
def test_django_auth_answers_as_django_does_and_never_500(
    fetch: Fetch, path: str, user: str | None, expected: object, mode: str
) -> None:
    status, headers, body = fetch(path, mode, user)
    if expected == "login":  # what Django does: redirect to the login page, next= this URL
        assert status == 302
        assert headers["location"].startswith("/accounts/login/?next=/auth/")
    elif expected == 403:
        assert_json_403(status, headers, body)
    else:
        assert status == 200, body
        names = {item["user"] for item in items_of(mode, body)}
        assert names == {expected}


@pytest.mark.parametrize("mode", MODES)
def test_a_projects_own_sync_mixin_overriding_dispatch_works(fetch: Fetch, mode: str) -> None:
    assert_json_403(*fetch("blue-team/", mode, "alice"))
    status, _, body = fetch("blue-team/", mode, "alice", {"X-Team": "blue"})  # type: ignore[call-arg]
    assert status == 200
    assert [item["n"] for item in items_of(mode, body)] == [0, 1, 2]


def test_a_view_without_a_sync_mixin_is_djangos_own_async_view() -> None:  # no fixtures: no database
    # No thread hop: the wrapper that runs a mixin's dispatch() in a thread is only there with a mixin.
    assert Items.as_view().__code__ is not LoginRequired.as_view().__code__
    assert Items.as_view().__qualname__ == "View.as_view.<locals>.view"
