"""Exceptions as HTTP statuses and JSON bodies, the same before and after a response has started."""

from __future__ import annotations

import traceback
from http import HTTPStatus
from typing import Any

from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404

from .negotiation import NegotiationError

# Exceptions whose message is written for the client, as Django's own views treat them.
_CLIENT_ERRORS: tuple[tuple[type[Exception], int], ...] = (
    (Http404, 404),
    (PermissionDenied, 403),
    (BadRequest, 400),
)


def status_for(exc: Exception) -> int:
    """The HTTP status Django itself would answer ``exc`` with (a refused negotiation carries its own)."""
    if isinstance(exc, NegotiationError):
        return exc.status
    for cls, status in _CLIENT_ERRORS:
        if isinstance(exc, cls):
            return status
    if isinstance(exc, SuspiciousOperation):
        return 400
    return 500


def error_body(
    status: int, message: str | None = None, *, exc: BaseException | None = None, debug: bool = False
) -> dict[str, Any]:
    """``{"error": {"status", "message"}}``; with ``debug``, a server error's type and traceback too.

    Only for a 5xx: a client's error (a 403 from an auth mixin, say) is the client's business, and its
    traceback would show the internals of the code that refused, not a fault to debug.
    """
    error: dict[str, Any] = {"status": status, "message": message or HTTPStatus(status).phrase}
    if debug and exc is not None and status >= 500:
        error["type"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
        error["traceback"] = "".join(traceback.format_exception(exc))
    return {"error": error}


def exception_body(exc: Exception, *, debug: bool) -> tuple[int, dict[str, Any]]:
    """The status and JSON body for ``exc``; its message is shown only if meant for the client, or in debug."""
    status = status_for(exc)
    shown = debug or isinstance(exc, (NegotiationError, *(cls for cls, _ in _CLIENT_ERRORS)))
    body = error_body(status, str(exc) if shown else None, exc=exc, debug=debug)
    if isinstance(exc, NegotiationError) and exc.allowed:
        body["error"]["allowed"] = [mode.value for mode in exc.allowed]  # what to ask for instead
    return status, body
