"""The demo's one table: sensor readings, seeded by ``manage.py seed_demo`` and streamed by the export demo."""

from __future__ import annotations

import datetime
import math

from django.db import models

#: The time of reading number 0; reading ``i`` is taken ``i`` seconds later.
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
SENSORS = 64


class Reading(models.Model):
    """One sensor reading. The export demo streams every row, in ``id`` order."""

    sensor = models.CharField(max_length=16)
    taken_at = models.DateTimeField()
    value = models.FloatField()

    def __str__(self) -> str:
        return f"{self.sensor} @ {self.taken_at:%Y-%m-%d %H:%M:%S}: {self.value}"

    @classmethod
    def synthetic(cls, index: int) -> Reading:
        """Reading number ``index`` of the demo data: a pure function of ``index``, so seeding can resume."""
        return cls(
            sensor=f"sensor-{index % SENSORS:02d}",
            taken_at=EPOCH + datetime.timedelta(seconds=index),
            value=round(20 + 8 * math.sin(index / 3600) + (index * 7919 % 100) / 100, 3),
        )
