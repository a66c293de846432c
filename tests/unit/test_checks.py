"""System checks over the settings (dualstream/checks.py), and the one settings mechanism they read (dualstream/conf.py)."""

from __future__ import annotations

import sys
from typing import Any
from unittest import mock

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from dualstream.broadcast.conf import BROADCAST, options
from dualstream.conf import DUALSTREAM, DualstreamDeprecationWarning
from dualstream.llm.conf import LLM


def messages(**overrides: Any) -> list[tuple[str, str, str]]:
    """(id, message, hint) of every dualstream check under ``overrides`` of the settings."""
    with override_settings(**overrides):
        return [(m.id, m.msg, m.hint) for m in run_checks(tags=["dualstream"])]


def ids(**overrides: Any) -> list[str]:
    return [id for id, _, _ in messages(**overrides)]


def test_the_suites_own_settings_pass() -> None:
    assert messages() == []


def test_a_bad_default_mode_fails_manage_py_check_clearly() -> None:
    with override_settings(DUALSTREAM={"DEFAULT_MODE": "stream"}), pytest.raises(SystemCheckError) as info:
        call_command("check")
    report = str(info.value)
    assert "dualstream.E003" in report
    assert """DUALSTREAM["DEFAULT_MODE"] is 'stream'; it must be one of "json", "sse", "ndjson".""" in report


def test_at_runtime_a_bad_value_names_the_setting_and_its_check() -> None:
    # Before: ValueError("'stream' is not a valid Mode") from deep in the view, with nothing naming the setting.
    with (
        override_settings(DUALSTREAM={"DEFAULT_MODE": "stream"}),
        pytest.raises(ImproperlyConfigured, match=r'DUALSTREAM\["DEFAULT_MODE"\] is .stream.*dualstream\.E003'),
    ):
        Client().get("/count/")


@pytest.mark.parametrize(
    ("key", "closest"), [("HEARTBEET", "'HEARTBEAT'"), ("heartbeat", "'HEARTBEAT'"), ("SEND_TIMOUT", "'SEND_TIMEOUT'")]
)
def test_an_unknown_key_warns_with_the_closest_name(key: str, closest: str) -> None:
    [(id, message, hint)] = messages(DUALSTREAM={key: 10.0})
    assert id == "dualstream.W001"
    assert repr(key) in message
    assert hint == f"Did you mean {closest}?"
    with override_settings(DUALSTREAM={key: 10.0}):
        call_command("check")  # a warning does not fail the command


def test_a_key_of_another_section_is_named_there() -> None:
    [(id, _, hint)] = messages(DUALSTREAM={"BACKEND": "redis"})
    assert id == "dualstream.W001"
    assert hint == """'BACKEND' is a key of DUALSTREAM["BROADCAST"]."""
    [(id, _, _)] = messages(DUALSTREAM={"BROADCAST": {"MAXLENGTH": 5}})
    assert id == "dualstream.W001"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"HEARTBEAT": "10"}, "dualstream.E002"),
        ({"HEARTBEAT": 0}, "dualstream.E002"),
        ({"HEARTBEAT": None, "SEND_TIMEOUT": None, "MAX_DURATION": 3600}, None),
        ({"BUFFER_SIZE": 1.5}, "dualstream.E002"),
        ({"RELEASE_REQUEST_THREAD": "no"}, "dualstream.E002"),
        ({"MAX_STREAMS": 0}, "dualstream.E002"),
        ({"MAX_BATCH_ITEMS": True}, "dualstream.E002"),
        ({"RECONNECT_RETRY": 0}, None),
        ({"RECONNECT_RETRY": -1}, "dualstream.E002"),
        ({"DEFAULT_MODE": "sse"}, None),
        ({"JSON_ENCODER": 7}, "dualstream.E004"),
        ({"JSON_ENCODER": "json.NoSuchEncoder"}, "dualstream.E004"),
        ({"JSON_ENCODER": "json.JSONDecoder"}, "dualstream.E004"),
        ({"JSON_ENCODER": "json.JSONEncoder"}, None),
        ({"BROADCAST": []}, "dualstream.E001"),
        ({"BROADCAST": {"MAXLEN": "many"}}, "dualstream.E002"),
        ({"BROADCAST": {"TIMEOUT": -1.0}}, "dualstream.E002"),
        ({"BROADCAST": {"BACKEND": "redi"}}, "dualstream.E005"),
        ({"BROADCAST": {"BACKEND": "myapp.nothing.Backend"}}, "dualstream.E005"),
        ({"BROADCAST": {"BACKEND": "json.JSONEncoder"}}, "dualstream.E005"),
        ({"BROADCAST": {"BACKEND": "dualstream.broadcast.backends.memory.MemoryBackend"}}, None),
        ({"LLM": {"API_KEYS": "sk-one"}}, "dualstream.E002"),
        ({"LLM": {"API_KEYS": ["sk-one"], "UPSTREAM_URL": "http://127.0.0.1:11434/v1"}}, None),
    ],
)
def test_each_value_is_checked(settings: dict[str, Any], expected: str | None) -> None:
    found = messages(DUALSTREAM=settings)
    assert [id for id, _, _ in found] == ([expected] if expected else [])
    assert all(hint for _, _, hint in found)


def test_a_whole_dict_of_the_wrong_type_is_one_error() -> None:
    assert ids(DUALSTREAM=["HEARTBEAT"]) == ["dualstream.E001"]


def test_a_mistyped_backend_name_gets_the_closest_one() -> None:
    [(_, message, hint)] = messages(DUALSTREAM={"BROADCAST": {"BACKEND": "Redis "}})
    assert "no such backend" in message
    assert hint == "Did you mean 'redis'?"


def test_the_redis_backend_without_the_redis_package_is_an_error_naming_the_extra() -> None:
    assert ids(DUALSTREAM={"BROADCAST": {"BACKEND": "redis"}}) == []  # installed here
    # As if redis were not installed: None in sys.modules makes `import redis` fail, and the
    # backend's module is imported afresh (patch.dict puts both entries back afterwards).
    with mock.patch.dict(sys.modules, {"redis": None}):
        sys.modules.pop("dualstream.broadcast.backends.redis", None)
        [(id, message, hint)] = messages(DUALSTREAM={"BROADCAST": {"BACKEND": "redis"}})
    assert id == "dualstream.E006"
    assert "redis" in message
    assert hint == 'pip install "dualstream[redis]"'


def test_every_default_passes_its_own_rule() -> None:
    parts = [DUALSTREAM, *DUALSTREAM.sections.values()]
    assert {part.label for part in parts} == {"DUALSTREAM", 'DUALSTREAM["BROADCAST"]', 'DUALSTREAM["LLM"]'}
    for part in parts:
        for name, default in part.defaults.items():
            assert part.problem(name, default) is None, (part.label, name)


# One mechanism: sections read like the core, the old LLM name with a warning ----------------------------


def test_broadcast_options_are_the_project_values_over_the_defaults() -> None:
    with override_settings(DUALSTREAM={"BROADCAST": {"MAXLEN": 5}}):
        assert options() == {**BROADCAST.defaults, "MAXLEN": 5}
        assert BROADCAST.get("MAXLEN") == 5
        assert BROADCAST.get("BUFFER") == BROADCAST.defaults["BUFFER"]


def test_the_llm_settings_are_a_section_of_dualstream() -> None:
    with override_settings(DUALSTREAM={"LLM": {"API_KEYS": ["sk-one"]}}):
        assert LLM.get("API_KEYS") == ["sk-one"]
        assert LLM.get("UPSTREAM_URL") == ""


def test_the_old_llm_setting_is_read_with_a_deprecation_warning_and_a_check() -> None:
    with override_settings(DUALSTREAM={}, DUALSTREAM_LLM={"API_KEYS": ["sk-old"]}):
        with pytest.warns(DualstreamDeprecationWarning, match=r'DUALSTREAM_LLM .*DUALSTREAM\["LLM"\]'):
            assert LLM.get("API_KEYS") == ["sk-old"]
            response = Client().post("/llm/scripted/v1/chat/completions", "{}", content_type="application/json")
        assert response.status_code == 401  # the old setting's key is required
    assert ids(DUALSTREAM={}, DUALSTREAM_LLM={"API_KEYS": ["sk-old"]}) == ["dualstream.W002"]
    assert ids(DUALSTREAM_LLM={"API_KEYS": "sk-old"}) == ["dualstream.W002", "dualstream.E002"]


def test_the_new_llm_setting_wins_over_the_old_one() -> None:
    both = {"DUALSTREAM": {"LLM": {"API_KEYS": ["sk-new"]}}, "DUALSTREAM_LLM": {"API_KEYS": ["sk-old"]}}
    with override_settings(**both):
        assert LLM.get("API_KEYS") == ["sk-new"]
    assert ids(**both) == ["dualstream.W003"]
