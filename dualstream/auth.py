"""Authentication and permissions for dualstream views: checks inside ``produce()``, and JSON 403s.

Django's own ``LoginRequiredMixin``, ``PermissionRequiredMixin`` and
``UserPassesTestMixin`` work on a ``DualModeView`` as they are (views.py runs
their synchronous ``dispatch()`` in the request's thread). For checks that
depend on what ``produce()`` is about to stream, ``require_user()`` is the
async equivalent; a refusal is the view's JSON 403 in every mode.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.views import defaults

from .views import DualModeView


async def require_user(
    request: HttpRequest, *, perms: Iterable[str] = (), test: Callable[[Any], bool] | None = None
) -> Any:
    """The request's user, if authenticated, holding ``perms`` and passing ``test``; else ``PermissionDenied``.

    Call it first thing in ``produce()``: before the first item, the refusal is
    an HTTP 403 in every mode (a stream cannot redirect an ``EventSource`` to a login page)::

        async def produce(self, request, *args, **kwargs):
            user = await require_user(request, perms=["orders.view_order"])
    """
    user = await request.auser()
    if not user.is_authenticated:
        raise PermissionDenied("Authentication required.")
    perms = list(perms)
    if perms and not await user.ahas_perms(perms):
        raise PermissionDenied("You do not have permission to view this.")
    if test is not None and not await sync_to_async(test)(user):
        raise PermissionDenied("You do not have permission to view this.")
    return user


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A project's ``handler403``: a dualstream view's own JSON 403, Django's page for any other view.

    Decorators such as ``permission_required(..., raise_exception=True)`` refuse
    before the view runs, so the view cannot answer; in the root URLconf::

        handler403 = "dualstream.auth.permission_denied"
    """
    match = request.resolver_match
    view_class = getattr(match.func, "view_class", None) if match is not None else None
    if match is None or not (isinstance(view_class, type) and issubclass(view_class, DualModeView)):
        return defaults.permission_denied(request, exception)
    view = view_class(**getattr(match.func, "view_initkwargs", {}))
    view.setup(request, *match.args, **match.kwargs)
    response = view.error_response(*view.get_error_body(PermissionDenied(*exception.args)))
    patch_vary_headers(response, ("Accept",))
    return response
