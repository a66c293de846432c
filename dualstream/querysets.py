"""Streaming a ``QuerySet`` from ``produce()`` at constant memory, in every mode.

``async for row in qs.aiterator(chunk_size=...)`` is already memory-flat: it
fetches ``chunk_size`` rows per hop to the request's database thread, from a
server-side cursor on PostgreSQL. What it lacks is a way to *close* that
cursor when a client leaves mid-stream: the abandoned ``aiterator()`` is
finalized later by the event loop, which then closes the cursor from the
loop's own thread (a blocking round trip, on a connection that belongs to the
database thread), possibly after the request has closed that connection.

``aiterate()`` is ``aiterator()`` with that fixed: it drives the same
``QuerySet.iterator()`` (same chunks, same cursor, same
``DISABLE_SERVER_SIDE_CURSORS`` fallback, same per-chunk prefetching) and
closes it in the request's database thread as soon as it is closed itself.
``QuerySetView`` builds a whole endpoint on it: rows as ``values()`` dicts,
a ``serialize()`` hook per row, and resumption by key (keyset pagination).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from contextlib import aclosing
from itertools import islice
from typing import Any, TypeVar, cast

from asgiref.sync import sync_to_async
from django.core.exceptions import BadRequest, ImproperlyConfigured, ValidationError
from django.db import connections
from django.db.models import Field, QuerySet
from django.http import HttpRequest

from .conf import Setting
from .events import Event
from .negotiation import Mode
from .threads import request_thread_gone
from .views import DualModeView

T = TypeVar("T")

__all__ = ["QuerySetView", "aiterate"]

logger = logging.getLogger("dualstream")


async def aiterate(queryset: QuerySet[Any, T], chunk_size: int = 2000) -> AsyncGenerator[T, None]:
    """``queryset.aiterator(chunk_size)``, whose cursor is closed as soon as the iteration is.

    Iterate it inside ``contextlib.aclosing``: a generator that ``produce()``
    merely stops iterating is not closed by ``async for``, only collected later::

        async with aclosing(aiterate(qs, chunk_size=2000)) as rows:
            async for row in rows:
                yield row
    """
    async with aclosing(_chunks(queryset, chunk_size)) as chunks:
        async for chunk in chunks:
            for row in chunk:
                yield row


async def _chunks(queryset: QuerySet[Any, T], chunk_size: int) -> AsyncGenerator[list[T], None]:
    """Lists of up to ``chunk_size`` rows: one hop to the database thread per list, not per row."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be strictly positive.")
    # A generator: nothing runs until the first fetch, which happens in the database thread.
    rows = cast(Generator[T, None, None], queryset.iterator(chunk_size=chunk_size))
    fetch = sync_to_async(_take)  # thread-sensitive: the thread that owns this request's connections
    try:
        while True:
            # No request_thread_slots() here: a fetch waits on the database (the first one runs the query),
            # and a slow query holding one of a few slots per process would hold up every other export.
            chunk = await fetch(rows, chunk_size)
            if not chunk:
                break
            yield chunk
            if len(chunk) < chunk_size:
                break
    finally:
        # Shielded: a second cancellation of the request must not leave the cursor to a finalizer.
        await asyncio.shield(_close_rows(rows, queryset.db))


async def _close_rows(rows: Generator[Any, None, None], alias: str) -> None:
    """Close the cursor behind ``rows`` in the thread that owns its connection, or not at all.

    In that thread, after any fetch still running there (a cancelled await does
    not stop it), closing the generator closes the cursor (a PostgreSQL
    ``CLOSE``) while the connection is open. Once the connection is closed
    (``request_finished`` may come first when the client left early) or its
    thread is gone, the cursor went with it: the generator is closed quietly.
    """
    state = inspect.getgeneratorstate(rows)
    if state == inspect.GEN_CREATED:
        rows.close()  # never started: no cursor yet, nothing to reach the database for
    elif state == inspect.GEN_CLOSED:
        pass
    elif not request_thread_gone():
        await sync_to_async(_close_in_owner)(rows, alias)
    else:
        # Closed anyway, off the loop, so that its finally does not run later in a finalizer.
        await sync_to_async(_close_orphan, thread_sensitive=False)(rows)


def _close_in_owner(rows: Generator[Any, None, None], alias: str) -> None:
    if connections[alias].connection is None:  # closed already: its cursor with it
        _close_orphan(rows)
    else:
        rows.close()


def _close_orphan(rows: Generator[Any, None, None]) -> None:
    """Close ``rows`` whose connection is gone: the cursor's close can only fail, and that is expected.

    Django's cursor generator closes its cursor in a ``finally`` that runs
    while ``rows`` unwinds, where Python reports a failure as "Exception
    ignored"; in this thread, during this call, such a report is logged at
    DEBUG instead. Reports from other threads go to the hook as usual.
    """
    thread = threading.get_ident()
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if threading.get_ident() == thread:
            logger.debug("A cursor outlived its connection: %r", unraisable.exc_value)
        else:
            previous(unraisable)

    with _unraisable_lock:
        sys.unraisablehook = hook
        try:
            rows.close()
        except Exception as exc:
            logger.debug("A cursor outlived its connection: %r", exc)
        finally:
            sys.unraisablehook = previous


_unraisable_lock = threading.Lock()


def _take(rows: Iterator[T], count: int) -> list[T]:
    return list(islice(rows, count))


class QuerySetView(DualModeView):
    """A ``DualModeView`` whose items are the rows of a queryset, streamed at constant memory.

    Each row is a ``values()`` dict of ``fields``, turned into an item by
    ``serialize()``. Rows come in ``key`` order; in SSE each event's ``id`` is
    the row's key, so a client reconnecting with ``Last-Event-ID`` (or any
    mode with ``?lastEventId=``) continues after that row: keyset pagination,
    never an offset, so rows added or deleted meanwhile shift nothing.

    Batch mode buffers the whole list unless ``batch_streaming = True`` (see
    ``docs/querysets.md`` for the trade-off); SSE and NDJSON always stream.
    """

    #: The rows to stream; ``get_queryset()`` returns a fresh copy of it per request.
    queryset: QuerySet[Any, Any] | None = None
    #: The fields of each row (``values()`` arguments); None selects every concrete field.
    fields: Sequence[str] | None = None
    #: An ordered, unique field: the streaming order and each row's SSE id. ``"-name"`` streams it descending.
    key: str = "pk"
    #: Rows fetched per hop to the database thread (and per ``FETCH`` from a PostgreSQL cursor).
    chunk_size = Setting[int]("CHUNK_SIZE")

    def get_queryset(self) -> QuerySet[Any, Any]:
        """The rows to stream, before ordering and resumption: filter them here, per request.

        Called by ``aget_queryset()`` in the request's thread, where the ORM works: ``self.request.user``
        (a lazy object that reads the session) can be used here, as in Django's generic views.
        """
        if self.queryset is None:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} needs a 'queryset' attribute or a get_queryset() method."
            )
        return self.queryset.all()

    async def aget_queryset(self) -> QuerySet[Any, Any]:
        """``get_queryset()``, from ``produce()``: run in the request's thread (the database's).

        Override this one instead to filter with async calls (``await self.request.auser()``) and no thread hop.
        """
        return await sync_to_async(self.get_queryset)()

    def serialize(self, row: dict[str, Any]) -> Any:
        """The item for one row (any JSON-serialisable value); the row itself by default.

        Called once per row on the event loop: no queries here (select what a row needs with ``fields``).
        """
        return row

    def stream_queryset(self, queryset: QuerySet[Any, Any] | None = None) -> QuerySet[Any, dict[str, Any]]:
        """What ``produce()`` iterates: ``queryset`` (``aget_queryset()``'s) in key order, after the resumption key, as dicts.

        Builds the query without running it: called on the event loop, it must not query the database.
        """
        if queryset is None:
            queryset = self.get_queryset()
        descending = self.key.startswith("-")
        field = self._key_field(queryset)
        name = field.attname
        queryset = queryset.order_by(f"-{name}" if descending else name)
        after = self.last_event_id
        if after is not None:
            try:
                value = field.to_python(after)
            except ValidationError:
                raise BadRequest(f"Cannot resume after {after[:40]!r}: it is not a valid {name}.") from None
            queryset = queryset.filter(**{f"{name}__{'lt' if descending else 'gt'}": value})
        fields = self.fields
        if fields is not None and name not in fields:
            fields = [*fields, name]  # the key is always selected: it is the event id
        return queryset.values(*(fields or ()))

    async def produce(self, request: HttpRequest, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        """Each row, serialized; in SSE as an ``Event`` whose id is the row's key (other modes have no ids)."""
        queryset = self.stream_queryset(await self.aget_queryset())
        name = self._key_field(queryset).attname
        serialize: Callable[[dict[str, Any]], Any] | None = self.serialize
        if getattr(serialize, "__func__", None) is QuerySetView.serialize:
            # The default is the identity, not called: 300 instructions per row, benchmarks/export_instructions.py.
            serialize = None
        with_ids = self.mode is Mode.SSE
        new = object.__new__
        async with aclosing(_chunks(queryset, self.chunk_size)) as chunks:
            async for rows in chunks:
                for row in rows:
                    item = row if serialize is None else serialize(row)
                    if with_ids:
                        key = row[name]
                        if type(key) is int:
                            # Event(item, id=key) without Event.__init__ (an int id needs no check), every slot set:
                            # 900 of 69,700 instructions per SSE row (1.3%), benchmarks/export_instructions.py.
                            event = new(Event)
                            event.data = item
                            event.id = key
                            event.event = event.retry = event.json = None
                            item = event
                        else:
                            item = Event(item, id=str(key))
                    yield item

    def _key_field(self, queryset: QuerySet[Any, Any]) -> Field[Any, Any]:
        meta = queryset.model._meta
        name = self.key.removeprefix("-")
        return cast("Field[Any, Any]", meta.pk if name == "pk" else meta.get_field(name))
