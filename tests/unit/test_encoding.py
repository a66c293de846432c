"""compact_dumps(): the reused C encoder behind every view's ``dumps``, added for queryset throughput."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from hypothesis import given
from hypothesis import strategies as st

from dualstream.encoding import compact_dumps

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def reference(value: Any, encoder: type[json.JSONEncoder] = DjangoJSONEncoder) -> str:
    return encoder(ensure_ascii=False, separators=(",", ":")).encode(value)


@given(json_values)
def test_the_output_is_encode_s_byte_for_byte(value: Any) -> None:
    assert compact_dumps(DjangoJSONEncoder)(value) == reference(value)


def test_values_only_the_encoder_s_default_can_write_go_through_it() -> None:
    value = {
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC),
        "amount": decimal.Decimal("1.50"),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "text": "é\u2028",
    }
    assert compact_dumps(DjangoJSONEncoder)(value) == reference(value)


def test_a_failure_midway_leaves_the_encoder_usable() -> None:
    dumps = compact_dumps(DjangoJSONEncoder)
    row: dict[str, Any] = {"ok": [1, 2], "bad": object()}
    with pytest.raises(TypeError):
        dumps(row)
    row["bad"] = 3  # the same containers again: none may still be marked as being encoded
    assert dumps(row) == '{"ok":[1,2],"bad":3}'


def test_a_circular_value_is_still_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        compact_dumps(DjangoJSONEncoder)(loop)


def test_an_encoder_with_its_own_encode_keeps_it() -> None:
    class Shouting(json.JSONEncoder):
        def encode(self, o: Any) -> str:
            return super().encode(o).upper()

    assert compact_dumps(Shouting)({"a": "b"}) == '{"A":"B"}'
