"""``{% load dualstream %}``: the attributes that connect an element to a stream and close it at the end.

A browser's ``EventSource`` and the libraries built on it reconnect after
every stream, finished or not. Each tag writes its library's own way to stop
on the final ``done`` event, so that a finished stream is never replayed:

* ``{% htmx_sse url %}`` — htmx 2 with ``htmx-ext-sse``: ``hx-ext="sse" sse-connect="…" sse-close="done"``;
  without ``sse-close`` the extension opens a fresh ``EventSource`` (no ``Last-Event-ID``)
  after the server's 204 and replays the stream from its start.
* ``{% htmx_sse url version=4 %}`` — htmx 4's ``hx-sse`` extension: ``hx-sse:connect="…" hx-sse:close="done"``;
  without it htmx 4 reconnects after every end: twice a second on a 204, so an htmx request gets
  the ``done`` event again instead, with ``retry: 60000`` (``DualModeView.completed_response()``).
* ``{% datastar_get url [method] [retry=...] %}`` — Datastar v1: ``@get('…', {retry: 'always'})``, for a ``data-init`` or
  ``data-on:*`` attribute. ``'always'`` makes Datastar reconnect (with ``Last-Event-ID``) after a
  stream the server cut, as EventSource does; after the end it gets the 204 that stops it.

URLs are escaped for the attribute (and for a JavaScript string in ``datastar_get``).
"""

from __future__ import annotations

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

register = template.Library()

#: The event every finished stream ends with (``SSERenderer.end()``).
DONE_EVENT = "done"


@register.simple_tag
def htmx_sse(url: str, version: int = 2) -> SafeString:
    """The attributes of an element that streams ``url`` with htmx ``version`` (2 or 4)."""
    if str(version) == "2":
        return format_html('hx-ext="sse" sse-connect="{}" sse-close="{}"', url, DONE_EVENT)
    if str(version) == "4":
        return format_html('hx-sse:connect="{}" hx-sse:close="{}"', url, DONE_EVENT)
    raise template.TemplateSyntaxError(f"htmx_sse: version must be 2 or 4, not {version!r}")


@register.simple_tag
def datastar_get(url: str, method: str = "get", retry: str = "always") -> SafeString:
    """A Datastar action that streams ``url``, resumes after a cut and stops at the end: for ``data-init``.

    ``retry='auto'`` (Datastar's default) never resumes a cut stream, and never retries an HTTP error either.
    """
    if method not in ("get", "post", "put", "patch", "delete"):
        raise template.TemplateSyntaxError(
            f"datastar_get: method must be get, post, put, patch or delete, not {method!r}"
        )
    if retry not in ("always", "auto", "error", "never"):
        raise template.TemplateSyntaxError(f"datastar_get: retry must be always, auto, error or never, not {retry!r}")
    # JSON-style escaping for the JavaScript string, then HTML escaping for the attribute around it.
    literal = url.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return SafeString(escape(f"@{method}('{literal}', {{retry: '{retry}'}})"))
