"""``manage.py seed_demo [--rows N]``: top the demo table up to N readings, fast and idempotent."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS, transaction

from project.demo.models import Reading


class Command(BaseCommand):
    help = "Top the demo's Reading table up to --rows rows (bulk inserts; rows already there are kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=200_000, help="Rows the table should hold (default 200,000).")
        parser.add_argument("--batch-size", type=int, default=10_000, help="Rows per INSERT batch.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database alias to seed.")

    def handle(self, *args: Any, rows: int, batch_size: int, database: str, **options: Any) -> None:
        started = time.perf_counter()
        readings = Reading.objects.using(database)
        existing = readings.count()
        # Reading i is a function of i alone: topping up from `existing` continues the same series.
        for start in range(existing, rows, batch_size):
            stop = min(rows, start + batch_size)
            # One transaction per batch: an interrupted run keeps what it committed and resumes from there.
            with transaction.atomic(using=database):
                readings.bulk_create([Reading.synthetic(i) for i in range(start, stop)], batch_size=batch_size)
        added = max(0, rows - existing)
        total = existing + added
        self.stdout.write(f"seed_demo: {total:,} readings ({added:,} added in {time.perf_counter() - started:.1f} s).")
