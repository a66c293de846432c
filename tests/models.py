"""The library tests' one table: samples that QuerySetView tests export and resume."""

from __future__ import annotations

import datetime

from django.db import models

#: The time of sample number 0; sample ``i`` is taken ``i`` seconds later.
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class Sample(models.Model):
    sensor = models.CharField(max_length=16)
    taken_at = models.DateTimeField()
    value = models.FloatField()

    @classmethod
    def synthetic(cls, index: int) -> Sample:
        """Sample number ``index``: a pure function of it, so a table can be topped up and still be one series."""
        return cls(sensor=f"sensor-{index % 8}", taken_at=EPOCH + datetime.timedelta(seconds=index), value=index / 4)

    @classmethod
    def top_up(cls, alias: str, rows: int) -> None:
        """Make the table on ``alias`` hold samples 0..rows-1, keeping those already there."""
        existing = cls.objects.using(alias).count()
        cls.objects.using(alias).bulk_create([cls.synthetic(i) for i in range(existing, rows)], batch_size=2000)


class Customer(models.Model):
    """A user's customer record: what docs/querysets.md's per-user export filters on."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE, related_name="customer")


class Order(models.Model):
    """The orders of docs/querysets.md's examples, run as written by tests/e2e/test_querysets_docs.py."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    number = models.CharField(max_length=16)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    created = models.DateTimeField()
    paid = models.BooleanField(default=False)
