"""CPU-heavy steps of a request, off the event loop: a small pool of threads of the library's own.

Every stream a process serves shares its event loop: a step that computes for
50 ms on it (parsing a 2 MB chat request, counting its prompt, encoding a large
batch) stalls them all for 50 ms, and 20 such requests arriving together for
a second. In a thread, Python code gives the GIL back to the loop every
``sys.getswitchinterval()`` (5 ms), so the loop keeps turning. A single call
into C (``json.loads``, ``str.split``, a one-shot ``json.dumps``) keeps the
GIL for its whole length, in a thread or not: work sent here is cut into calls
that are short (``encoding.encode_document``, ``llm.protocol.word_count``).

Why this pool, and not another:

* not the loop's default executor (``asyncio.to_thread``, asgiref's
  ``thread_sensitive=False``): it also resolves host names (httpx's upstream
  connections) and runs Django's logging calls, which would queue behind a
  burst of large requests; and it has ``cpu_count() + 4`` threads, more
  CPU-bound threads than the GIL lets run, each lengthening the loop's wait for it;
* not the request's own thread (``sync_to_async(thread_sensitive=True)``):
  sync middleware and the ORM run there, and there is one per request, so a
  burst of 20 large requests would be 20 CPU-bound threads.

``MAX_THREADS`` bounds it: more requests wait in its queue (a request whose
client leaves meanwhile is dropped from it unstarted). Nothing sent here may
touch the database: a connection opened in these threads would never be closed
by ``request_finished``.

Work that needs the database stays in the request's own thread, but takes one
of ``REQUEST_THREAD_SLOTS`` per event loop while it computes there
(``request_thread_slots()``): rendering a fragment. Not a queryset's fetch: it waits on the
database, and a slow query would hold a slot, and with it every other request's step.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

#: Threads of the pool. Under the GIL one runs at a time anyway; two let a short job pass a long one.
MAX_THREADS = 2
#: The name of the pool's threads.
THREAD_NAME_PREFIX = "dualstream-cpu"
#: Steps computing in their requests' own threads at once, per event loop. Each request has its thread,
#: so without a bound 20 requests computing at once are 20 threads taking turns at the GIL with the loop:
#: 20 renders of a 2.7 MB template held a 10 ms ticker back 2.4 s (docs/performance.md, "Loop stalls").
REQUEST_THREAD_SLOTS = 2

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def request_thread_slots() -> asyncio.Semaphore:
    """This loop's slots for work in a request's own thread: ``async with request_thread_slots(): await ...``."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(REQUEST_THREAD_SLOTS)
    return slots


@functools.cache
def executor() -> ThreadPoolExecutor:
    """The pool, made on first use: a process forked before any request (gunicorn's preload) inherits no threads."""
    return ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix=THREAD_NAME_PREFIX)


async def offload(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)`` in the pool, with the caller's context variables; the loop goes on meanwhile.

    A hop costs tens of microseconds: call it for work that costs more than a
    millisecond on the loop, and run smaller work in place (each caller has a
    measured threshold).
    """
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(
        executor(), functools.partial(context.run, func, *args, **kwargs)
    )


async def offload_if(heavy: bool, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``func(*args, **kwargs)``: in the pool if ``heavy``, else in place, with no hop."""
    if not heavy:
        return func(*args, **kwargs)
    return await offload(func, *args, **kwargs)
