"""``manage.py publish TOPIC JSON [--event NAME]``: publish one event from a shell, cron or deploy script.

``JSON`` ``-`` reads one JSON value per line from standard input and publishes each as it arrives
(``tail -f log.ndjson | manage.py publish audit -``). Each event's id is printed on its own line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from dualstream.broadcast import BroadcastUnavailable, publish


class Command(BaseCommand):
    help = "Publish a JSON value to a broadcast topic (or one per line of stdin with '-'); print each event's id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("topic", help="The topic, e.g. 'orders'.")
        parser.add_argument(
            "data",
            metavar="JSON",
            help="The event's data as JSON, e.g. '{\"id\": 7}'; '-': one JSON value per line of stdin.",
        )
        parser.add_argument("--event", default=None, help="The SSE event name (default: none, a 'message' event).")

    def handle(self, *args: Any, topic: str, data: str, event: str | None, **options: Any) -> None:
        lines = sys.stdin if data == "-" else [data]
        for line in lines:
            if data == "-" and not line.strip():
                continue
            self.stdout.write(self._publish(topic, _parse(line), event))
            self.stdout.flush()

    def _publish(self, topic: str, data: Any, event: str | None) -> str:
        try:
            return publish(topic, data, event=event)
        except (ValueError, BroadcastUnavailable) as exc:
            raise CommandError(str(exc)) from exc


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"Not JSON: {exc}") from exc
