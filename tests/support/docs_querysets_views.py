"""docs/querysets.md's per-user export, as written there, served for tests/e2e/test_querysets_docs.py.

The doc's blocks are run with its model names bound to the tests app's ``Order``; ``path`` builds the URL it shows.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import path

from tests.models import Order
from tests.support.paths import ROOT

DOC = ROOT / "docs" / "querysets.md"


def doc_classes() -> list[dict[str, Any]]:
    """Each ``python`` block of the doc that defines ``class OrderExport(LoginRequiredMixin, ...)``, run."""
    found = []
    for block in re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        if "class OrderExport(LoginRequiredMixin" not in block:
            continue
        namespace: dict[str, Any] = {"Order": Order, "path": path}
        if "import" not in block:  # a block that only varies the one before it: the same imports
            block = (
                "from django.contrib.auth.mixins import LoginRequiredMixin\nfrom dualstream import QuerySetView\n"
                + block
            )
        exec(compile(block, str(DOC), "exec"), namespace)
        found.append(namespace)
    return found


urlpatterns = [path(f"{index}/orders/export/", ns["OrderExport"].as_view()) for index, ns in enumerate(doc_classes())]
