"""The export demo: every row of a large table, as JSON, NDJSON or SSE, at constant memory."""

from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from dualstream import QuerySetView

from .models import Reading


class ReadingExport(QuerySetView):
    """Every reading in ``id`` order. In SSE each event's id is the row's id, so a reconnect resumes after it.

    ``batch_streaming``: an export is too large to buffer, so the JSON document is
    written row by row too (a failure midway leaves it unterminated instead of a 500).
    """

    queryset = Reading.objects.all()
    fields = ["id", "sensor", "taken_at", "value"]
    batch_streaming = True


class ExportPageView(TemplateView):
    """The page that streams the export with a live counter, and offers it as downloads."""

    template_name = "demo/export.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        total = Reading.objects.count()
        # The page's counter shows rows as the browser's toLocaleString() does: "200,000", not "200000".
        return {**super().get_context_data(**kwargs), "total": total, "total_rows": f"{total:,}"}
