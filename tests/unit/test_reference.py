"""docs/reference.md and the README's settings agree with the code: defaults, keys and check ids."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dualstream.checks import PARTS
from dualstream.conf import DEFAULTS, Settings
from tests.support.paths import ROOT

REFERENCE = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")


def shown(value: Any) -> str:
    """A default as the docs write it: "json", 65536, None, DjangoJSONEncoder."""
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@pytest.mark.parametrize("part", PARTS, ids=lambda part: part.label)
def test_the_reference_lists_every_setting_with_its_default(part: Settings) -> None:
    heading = f"(`{part.label}`)"
    section = REFERENCE[REFERENCE.index(heading) :]
    table = section[: section.index("\n\n", section.index("| key |"))]
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", table, re.M))
    assert rows == {name: shown(default) for name, default in part.defaults.items()}


def test_the_reference_lists_every_check_id() -> None:
    sources = "".join(path.read_text() for path in (ROOT / "dualstream").rglob("*.py"))
    in_code = set(re.findall(r"dualstream\.[EW]\d{3}", sources))
    documented = set(re.findall(r"^\| `(dualstream\.[EW]\d{3})` \|", REFERENCE, re.M))
    assert in_code and in_code == documented


def test_the_readme_options_table_shows_the_defaults() -> None:
    cells = re.findall(r'`DUALSTREAM\["(\w+)"\]` \(([^)]*)\)', README)
    assert {name for name, _ in cells} == set(DEFAULTS) - {"CHUNK_SIZE", "HANDLE_SHUTDOWN"}  # not DualModeView's
    for name, value in cells:
        assert value.strip("`").replace(",", "") == shown(DEFAULTS[name]), name


def test_the_readme_settings_example_is_the_defaults() -> None:
    block = re.search(r"```python\n(DUALSTREAM = \{.*?)```", README, re.S)
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    example = namespace["DUALSTREAM"]
    sections = {part.key: part for part in PARTS if part.key is not None}
    assert set(example) == set(DEFAULTS) | set(sections)
    for part in PARTS:
        values = example if part.key is None else example[part.key]
        for name, value in values.items():
            if name not in sections:
                default = part.defaults[name]
                if isinstance(default, type):  # an encoder, written as its dotted path
                    default = f"{default.__module__}.{default.__qualname__}"
                assert value == default, name
