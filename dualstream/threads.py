"""Giving back the thread Django keeps for each request while a stream is idle.

Django's ASGI handler runs each request's synchronous work (the
``request_started``/``request_finished`` signals, ORM calls) on a thread of
the request's own, from asgiref's per-request ``ThreadSensitiveContext``,
created on first use and kept until the response ends. A stream open for an
hour keeps it for an hour, idle: 10,000 open streams, 10,000 threads.

``release_idle_thread()`` ends that thread early. It is the pump's
``on_started``: the pump calls it once, from the producer task, at the first
*quiet point* once the response has started (the middleware has finished):
after an item, ``produce()`` suspended at ``yield``, or while ``produce()``
waits in ``dualstream.pump.parked()`` (a subscription waiting for live events;
the response starting wakes it for this). Why no synchronous call of the
request can be running on that thread, or be sent to it, meanwhile:

* every such call is awaited by a task of the request; once the response has
  started, that is the producer task alone (``produce()``, and the end's
  report), until it has finished and Django's handler closes the response;
* at a quiet point that task is here, not in ``produce()``: the calls it made
  have returned, and ``produce()`` cannot resume to make another until this
  returns. Run from any other task (the consumer's), the check could pass
  while ``produce()`` resumes and sends a query to the thread being shut down.

On the thread, the request's database connections are then closed, as
``request_finished`` would close them at the end (a thread about to exit
cannot keep them), unless one is in use, and then nothing is released:

* in a transaction: ``in_atomic_block`` (``transaction.atomic()`` entered in
  a synchronous call and not yet left), or autocommit turned off;
* with a cursor still open, as a ``QuerySet.aiterator()`` between two chunks
  keeps one: PostgreSQL is asked (``pg_cursors``: the session's ``WITH HOLD``
  cursors), SQLite too (``sqlite_stmt``: a statement stepped and not finished),
  where the SQLite library has that table. Where the database cannot say (other
  backends), an open connection is left open, with its thread.

The request's next synchronous call (a query in ``produce()``, or
``request_finished`` at the end) gets a new thread from asgiref, as the first
one did, with connections of its own (Django's are per thread). This reads
two attributes of ``asgiref.sync.SyncToAsync`` that are not documented API
(stable from asgiref 3.8 to 3.13): where they are missing, nothing is released.
"""

from __future__ import annotations

import contextvars
from contextlib import closing

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

#: Per database vendor, a query whose one value is true while the session has a cursor open (this one aside).
OPEN_CURSORS = {
    "postgresql": "SELECT EXISTS (SELECT 1 FROM pg_cursors)",
    "sqlite": "SELECT EXISTS (SELECT 1 FROM sqlite_stmt WHERE busy AND sql NOT LIKE '%sqlite_stmt%')",
}


async def release_idle_thread() -> bool:
    """Shut down this request's idle thread, its database connections closed; True if there was one to release.

    Call it only where no synchronous call of the request can be running or start meanwhile (see the module).
    """
    context = getattr(SyncToAsync, "thread_sensitive_context", None)
    executors = getattr(SyncToAsync, "context_to_thread_executor", None)
    owner = context.get(None) if context is not None else None
    if owner is None or executors is None or owner not in executors:
        return False  # not under Django's ASGI handler, or no thread yet
    if getattr(owner, "_executor", None) is not None:
        return False  # an executor its creator owns (asgiref 3.13's ThreadSensitiveContext(executor=...))
    if not await sync_to_async(close_idle_connections)():
        return False
    executor = executors.pop(owner, None)
    if executor is not None:
        executor.shutdown(wait=False)  # its worker exits now: nothing else is queued on it
    return True


def close_idle_connections() -> bool:
    """Close this thread's database connections, unless one is in use; True if none is left open.

    In use: in a transaction, or with a cursor open, or on a database that cannot tell (see the module).
    """
    opened = [c for c in connections.all(initialized_only=True) if c.connection is not None]
    if not all(map(_idle, opened)):
        return False
    for connection in opened:
        connection.close()
    return True


def _idle(connection: BaseDatabaseWrapper) -> bool:
    """Whether closing ``connection`` now loses nothing: no transaction, no open cursor."""
    if connection.in_atomic_block or not connection.get_autocommit():
        return False
    query = OPEN_CURSORS.get(connection.vendor)
    if query is None:
        return False
    errors: type[Exception] = connection.Database.Error  # type: ignore[attr-defined]  # every backend's, untyped
    try:
        # On the driver's connection: Django's execute wrappers and query log are for the project's queries.
        with closing(connection.connection.cursor()) as cursor:
            cursor.execute(query)
            return not cursor.fetchone()[0]
    except errors:  # the database cannot say (an SQLite built without sqlite_stmt)
        return False


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
