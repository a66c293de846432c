"""Dualstream views behind Django's own auth mixins and decorators, for tests/unit/test_auth.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from django.contrib.auth.decorators import login_required, permission_required, user_passes_test
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin, UserPassesTestMixin
from django.http import HttpRequest, HttpResponseBase
from django.urls import path
from django.utils.decorators import method_decorator

from dualstream import DualModeView, Event
from dualstream.auth import require_user


class Items(DualModeView):
    """Three items naming the user: what a private stream sends."""

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        user = await request.auser()
        for n in range(3):
            yield Event({"n": n, "user": user.get_username()}, id=str(n))


class LoginRequired(LoginRequiredMixin, Items):
    pass


class LoginRequiredJSON403(LoginRequiredMixin, Items):
    raise_exception = True


class PermissionRequired(PermissionRequiredMixin, Items):
    permission_required = "auth.view_user"
    raise_exception = True


class StaffOnly(UserPassesTestMixin, Items):
    raise_exception = True

    def test_func(self) -> bool:
        return bool(self.request.user.is_staff)  # type: ignore[union-attr]


class HeaderRequired:
    """A project's own synchronous mixin that overrides dispatch()."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if request.headers.get("X-Team") != "blue":
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied("Blue team only.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc, no-any-return]


class BlueTeam(HeaderRequired, Items):
    pass


@method_decorator(login_required, name="dispatch")
class MethodDecoratedLogin(Items):
    """``login_required`` on ``dispatch()``, as Django's docs decorate class-based views."""


class CheckedInProduce(DualModeView):
    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        user = await require_user(request, perms=["auth.view_user"])
        yield {"user": user.get_username()}


def is_staff(user: Any) -> bool:
    return bool(user.is_staff)


urlpatterns = [
    path("login-required/", LoginRequired.as_view()),
    path("login-required-403/", LoginRequiredJSON403.as_view()),
    path("permission-required/", PermissionRequired.as_view()),
    path("staff-only/", StaffOnly.as_view()),
    path("blue-team/", BlueTeam.as_view()),
    path("checked-in-produce/", CheckedInProduce.as_view()),
    path("decorated-login/", login_required(Items.as_view())),
    path("method-decorated-login/", MethodDecoratedLogin.as_view()),
    path("decorated-permission/", permission_required("auth.view_user", raise_exception=True)(Items.as_view())),
    path("decorated-test/", user_passes_test(is_staff)(Items.as_view())),
]
