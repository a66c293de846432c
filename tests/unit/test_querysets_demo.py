"""The export demo: the seed command and the page (its endpoint over HTTP: tests/e2e/test_querysets_demo.py)."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from project.demo.models import Reading


def seed(rows: int) -> str:
    out = io.StringIO()
    call_command("seed_demo", rows=rows, batch_size=7, stdout=out)
    return out.getvalue()


def as_tuples(readings) -> list[tuple]:
    return [(r.sensor, r.taken_at, r.value) for r in readings]


@pytest.mark.django_db
def test_seed_demo_tops_the_table_up_and_is_idempotent() -> None:
    assert "20 readings (20 added" in seed(20)
    assert "20 readings (0 added" in seed(20)
    assert "35 readings (15 added" in seed(35)
    assert "35 readings (0 added" in seed(10)  # never deletes
    rows = Reading.objects.order_by("id")
    # Reading i is the same whichever run wrote it: topping up continues the one series.
    assert as_tuples(rows) == as_tuples(Reading.synthetic(i) for i in range(35))


@pytest.mark.django_db
def test_the_export_page_shows_the_table_size_and_offers_both_downloads() -> None:
    seed(12)
    page = Client().get("/export/").content.decode()
    assert '<progress id="export-progress" max="12"' in page  # the live counter's end
    assert 'href="/api/readings/?format=ndjson" download="readings.ndjson"' in page
    assert 'href="/api/readings/?format=json" download="readings.json"' in page
    assert 'data-helper="/static/dualstream/dualstream.js"' in page
    assert '<a href="/export/">Export</a>' in Client().get("/").content.decode()
