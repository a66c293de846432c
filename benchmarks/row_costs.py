"""CPU per row of an export, without a database or a socket: where a streamed row costs more.

    python benchmarks/row_costs.py [--rows 1000000] [--repeat 5]

Rows shaped like the export benchmark's (id, sensor, aware datetime, float), in lists of 2,000
as ``QuerySetView`` gets them, each way timed with ``time.process_time()``, fastest of
``--repeat``:

- ``naive``: ``json.dumps(rows, cls=DjangoJSONEncoder)`` per list, as ``JsonResponse`` does;
- ``one dumps per list``: dualstream's encoder (``encoding.compact_dumps``), once per list;
- ``one dumps per row``: the same encoder per row, joined with newlines (NDJSON without the pump);
- ``pump, <mode>``: the rows as items of a ``produce()`` through the ``Pump`` and that mode's renderer.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make "dualstream" importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django
from django.conf import settings

settings.configure()
django.setup()

from django.core.serializers.json import DjangoJSONEncoder  # noqa: E402

from benchmarks import run_async  # noqa: E402
from dualstream.encoding import compact_dumps  # noqa: E402
from dualstream.events import Event  # noqa: E402
from dualstream.pump import Pump  # noqa: E402
from dualstream.renderers import JSONArrayRenderer, NDJSONRenderer, Renderer, SSERenderer  # noqa: E402

CHUNK = 2_000
TAKEN_AT = datetime.datetime(2026, 1, 1, 12, 30, 15, 250_000, tzinfo=datetime.UTC)
ROWS = [{"id": i, "sensor": f"sensor-{i % 50}", "taken_at": TAKEN_AT, "value": 12.5 + i} for i in range(CHUNK)]


async def _produce(chunks: int, keyed: bool) -> AsyncIterator[Any]:
    for _ in range(chunks):
        await asyncio.sleep(0)  # a hop per chunk, as for each fetch from the database thread
        if keyed:
            for row in ROWS:
                yield Event(row, id=row["id"])  # as QuerySetView yields an SSE row
        else:
            for row in ROWS:
                yield row


async def _reraise(exc: Exception) -> dict[str, Any]:
    raise exc


async def _pump(chunks: int, renderer: type[Renderer]) -> int:
    items = _produce(chunks, keyed=renderer is SSERenderer)
    dumps = compact_dumps(DjangoJSONEncoder)
    pump = Pump(items, renderer(dumps), keepalive=15.0, buffer_size=64 * 1024, describe_error=_reraise)
    await pump.prime()
    return sum([len(chunk) async for chunk in pump.chunks()])


def ways(chunks: int) -> dict[str, Callable[[], object]]:
    dumps = compact_dumps(DjangoJSONEncoder)
    return {
        "naive: json.dumps per list": lambda: [json.dumps(ROWS, cls=DjangoJSONEncoder).encode() for _ in range(chunks)],
        "one dumps per list": lambda: [dumps(ROWS).encode() for _ in range(chunks)],
        "one dumps per row": lambda: [("\n".join(map(dumps, ROWS)) + "\n").encode() for _ in range(chunks)],
        "pump, NDJSON": lambda: run_async(_pump(chunks, NDJSONRenderer)),
        "pump, streamed JSON": lambda: run_async(_pump(chunks, JSONArrayRenderer)),
        "pump, SSE with ids": lambda: run_async(_pump(chunks, SSERenderer)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    chunks = max(1, args.rows // CHUNK)
    rows = chunks * CHUNK
    print(f"{rows:,} rows, fastest of {args.repeat}; CPU µs per row")
    for name, run in ways(chunks).items():
        best = float("inf")
        for _ in range(args.repeat):
            started = time.process_time()
            run()
            best = min(best, time.process_time() - started)
        print(f"  {name:<28} {best / rows * 1e6:5.2f}", flush=True)


if __name__ == "__main__":
    main()
