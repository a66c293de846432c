"""Giving back the thread Django keeps for each request while a stream is idle.

Django's ASGI handler runs each request's synchronous work (the
``request_started``/``request_finished`` signals, ORM calls) on a thread of
the request's own, from asgiref's per-request ``ThreadSensitiveContext``,
created on first use and kept until the response ends. A stream open for an
hour keeps it for an hour, idle: 10,000 open streams, 10,000 threads.

``release_idle_thread()`` ends that thread early when nothing can need it:

* no database connection is open on it, checked on the thread itself, so no
  cursor, transaction or session lives there; and
* the caller guarantees that no other synchronous call of this request is
  running or about to be sent to it. The view hands it to the pump, which
  calls it between two items of ``produce()`` (the generator is suspended at
  ``yield``), once the response has started (the middleware has finished).

The request's next synchronous call (a query in ``produce()``, or
``request_finished`` at the end) gets a new thread from asgiref, as the first
one did. This reads two attributes of ``asgiref.sync.SyncToAsync`` that are
not documented API (stable from asgiref 3.8 to 3.13): where they are missing,
nothing is released.
"""

from __future__ import annotations

import contextvars

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import connections


async def release_idle_thread() -> bool:
    """Shut down this request's idle thread; True if there was one and it held no connection."""
    context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    owner = context.get(None) if context is not None else None
    if owner is None or executors is None or owner not in executors:
        return False  # not under Django's ASGI handler, or no thread yet
    if getattr(owner, "_executor", None) is not None:
        return False  # an executor its creator owns (asgiref 3.13's ThreadSensitiveContext(executor=...))
    if not await sync_to_async(_holds_no_connection)():
        return False
    executor = executors.pop(owner, None)
    if executor is not None:
        executor.shutdown(wait=False)  # its worker exits now: nothing else is queued on it
    return True


def _holds_no_connection() -> bool:
    return all(connection.connection is None for connection in connections.all(initialized_only=True))


def request_thread_gone() -> bool:
    """Whether this request's thread has been shut down, with the connections it held.

    True once Django's handler has left the request's ``ThreadSensitiveContext``
    (or a release ended the thread): a synchronous call now would start a new
    thread that nothing ever stops, to reach a connection that no longer exists.
    """
    context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    owner = context.get(None) if context is not None else None
    return owner is not None and executors is not None and owner not in executors


def in_request_task() -> bool:
    """Whether this code runs in the task of Django's handler that will send the response.

    Not so where a sync-only middleware made Django run the view through
    ``async_to_sync``: then the view has a task of its own, done once it returns.
    """
    return getattr(AsyncToSync.executors, "current", None) is None


def producer_context() -> contextvars.Context:
    """A copy of the current context for a producer task that outlives the view call that starts it.

    Where a sync-only middleware runs the view (through ``async_to_sync``),
    the context names that call's ``CurrentThreadExecutor`` as the place for
    thread-sensitive work; it quits once the view has returned, while the
    stream goes on. Hidden here, as asgiref's own ``ThreadSensitiveContext``
    hides it, such work goes to the request's thread, which is the same thread.
    """
    context = contextvars.copy_context()
    context.run(_hide_current_executor)
    return context


def _hide_current_executor() -> None:
    if getattr(AsyncToSync.executors, "current", None) is not None:
        AsyncToSync.executors.current = None
