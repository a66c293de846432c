"""The broadcast benchmark's publisher, in a process of its own so that the clients never delay it.

    DJANGO_SETTINGS_MODULE=project.settings REDIS_URL=redis://127.0.0.1:6379/15 SECRET_KEY=x \\
        python -m benchmarks.broadcast_publisher --topic t --rate 100 --seconds 10

Publishes ``{"t": <time.time_ns() just before the publish>}`` at a fixed rate with dualstream's
``publish()`` (or django-eventstream's ``send_event()`` with ``--eventstream``), then prints
``{"published": n, "rate": events/s}`` as JSON; ``--once JSON`` publishes one value and prints
``{"id": ...}``. Wall-clock nanoseconds, so that clients can compare them with the kernel's
receive timestamps.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any


def publisher(topic: str, eventstream: bool) -> Callable[[dict[str, Any]], object]:
    """A ``send(data)`` that publishes to ``topic`` with the site ``DJANGO_SETTINGS_MODULE`` names."""
    import django

    django.setup()
    if eventstream:
        from django_eventstream import send_event

        return lambda data: send_event(topic, "message", data)
    from dualstream.broadcast import publish

    return lambda data: publish(topic, data)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--topic", required=True)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--once", help="publish this JSON value once, print {'id': ...}")
    p.add_argument("--eventstream", action="store_true", help="publish with django-eventstream's send_event()")
    args = p.parse_args()
    send = publisher(args.topic, args.eventstream)
    if args.once is not None:
        print(json.dumps({"id": send(json.loads(args.once))}), flush=True)
        return
    published, interval, t0 = 0, 1 / args.rate, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < args.seconds:
        send({"t": time.time_ns()})
        published += 1
        pause = published * interval - (time.perf_counter() - t0)
        if pause > 0:
            time.sleep(pause)
    print(json.dumps({"published": published, "rate": published / elapsed}), flush=True)


if __name__ == "__main__":
    main()
