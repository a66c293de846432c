"""System checks over dualstream's settings: ``manage.py check`` (and ``runserver``, ``migrate``...) report them.

Every key and value of ``DUALSTREAM`` and its sections (``BROADCAST``,
``LLM``) is checked against the defaults tables and rules of
``dualstream/conf.py``, so that a bad setting fails the deployment, not every
request. The ids are listed in docs/reference.md.
"""

from __future__ import annotations

import difflib
import json
import warnings
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.utils.module_loading import import_string

from .broadcast.conf import BROADCAST
from .conf import DUALSTREAM, Settings
from .llm.conf import LLM

__all__ = ["check_settings"]

#: Every part of the settings: the core options and the sections of ``DUALSTREAM``.
PARTS: tuple[Settings, ...] = (DUALSTREAM, BROADCAST, LLM)

#: The packages each built-in broadcast backend needs, and the extra that installs them.
BACKEND_EXTRAS = {"redis": "dualstream[redis]"}


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Every problem in the project's dualstream settings."""
    messages: list[CheckMessage] = []
    for part in PARTS:
        messages += _check_part(part)
    messages += _check_encoder()
    messages += _check_backend()
    return messages


def _project(part: Settings) -> Any:
    with warnings.catch_warnings():  # an old setting name is reported as a check (W002), not warned about
        warnings.simplefilter("ignore")
        return part.project()


def _check_part(part: Settings) -> list[CheckMessage]:
    messages = _check_old_name(part)
    project = _project(part)
    if not isinstance(project, Mapping):
        return [
            *messages,
            Error(
                f"{part.label} is {project!r}; it must be a dict.",
                hint=f"Write {part.label} as a dict of settings, e.g. {{{next(iter(part.defaults))!r}: ...}}.",
                id="dualstream.E001",
            ),
        ]
    names = [*part.defaults, *part.sections]
    for key, value in project.items():
        if key in part.sections:
            continue  # checked as a part of its own
        if key not in part.defaults:
            messages.append(_unknown_key(part, key, names))
            continue
        rule = part.problem(key, value)
        if rule is not None:
            messages.append(
                Error(
                    part.describe_problem(key, value, rule),
                    hint=f"Use {rule.describe}; or remove the key for the default, {part.defaults[key]!r}.",
                    id=rule.id,
                )
            )
    return messages


def _unknown_key(part: Settings, key: object, names: list[str]) -> CheckMessage:
    """W001, with the closest known name, or the section the key belongs to."""
    text = str(key)
    close = difflib.get_close_matches(text.upper(), names, n=1)
    elsewhere = [other.label for other in PARTS if other is not part and text in other.defaults]
    if close:
        hint = f"Did you mean {close[0]!r}?"
    elif elsewhere:
        hint = f"{text!r} is a key of {elsewhere[0]}."
    else:
        hint = f"The keys of {part.label} are: {', '.join(names)}."
    return Warning(f"{part.label} has an unknown key {key!r}: it is ignored.", hint=hint, id="dualstream.W001")


def _check_old_name(part: Settings) -> list[CheckMessage]:
    """W002: a section still written as its old top-level setting; W003: both written, the old one ignored."""
    if part.old_name is None or not hasattr(settings, part.old_name):
        return []
    top = getattr(settings, part.setting_name, None)
    if isinstance(top, Mapping) and part.key in top:
        return [
            Warning(
                f"{part.old_name} is ignored: {part.label} is set.",
                hint=f"Merge {part.old_name} into {part.label} and remove it.",
                id="dualstream.W003",
            )
        ]
    return [
        Warning(
            f"The {part.old_name} setting is deprecated.",
            hint=f"Move it into {part.setting_name} as {part.label} = {{...}}.",
            id="dualstream.W002",
        )
    ]


def _check_encoder() -> list[CheckMessage]:
    """E004: ``JSON_ENCODER`` must import and be a ``json.JSONEncoder`` subclass."""
    project = _project(DUALSTREAM)
    value = project.get("JSON_ENCODER") if isinstance(project, Mapping) else None
    if not isinstance(value, str | type):
        return []  # absent (the default), or refused by its rule already
    hint = 'Name a json.JSONEncoder subclass, e.g. "django.core.serializers.json.DjangoJSONEncoder".'
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            return [Error(f'DUALSTREAM["JSON_ENCODER"] cannot be imported: {exc}', hint=hint, id="dualstream.E004")]
    if not (isinstance(value, type) and issubclass(value, json.JSONEncoder)):
        return [
            Error(
                f'DUALSTREAM["JSON_ENCODER"] is {value!r}, not a json.JSONEncoder subclass.',
                hint=hint,
                id="dualstream.E004",
            )
        ]
    return []


def _check_backend() -> list[CheckMessage]:
    """E005: the broadcast backend must import and be a ``Backend``; E006: a built-in one's package is missing."""
    from .broadcast.backends import BACKENDS, Backend  # its base imports no engine's client

    project = _project(BROADCAST)
    name = project.get("BACKEND") if isinstance(project, Mapping) else None
    if not isinstance(name, str):
        return []
    label = f'{BROADCAST.label}["BACKEND"]'
    if name not in BACKENDS and "." not in name:
        close = difflib.get_close_matches(name.lower(), list(BACKENDS), n=1)
        return [
            Error(
                f"{label} is {name!r}: no such backend.",
                hint=f"Did you mean {close[0]!r}?"
                if close
                else f"Use {' or '.join(map(repr, BACKENDS))}, or a dotted path.",
                id="dualstream.E005",
            )
        ]
    path = BACKENDS.get(name, name)
    try:
        backend = import_string(path)
    except ImportError as exc:
        if name in BACKEND_EXTRAS:
            return [
                Error(
                    f"{label} is {name!r}, but a package it needs cannot be imported: {exc}",
                    hint=f'pip install "{BACKEND_EXTRAS[name]}"',
                    id="dualstream.E006",
                )
            ]
        return [Error(f"{label}: cannot import {path!r}: {exc}", hint="Check the dotted path.", id="dualstream.E005")]
    if not (isinstance(backend, type) and issubclass(backend, Backend)):
        return [
            Error(
                f"{label}: {path!r} is not a Backend subclass.",
                hint="Subclass dualstream.broadcast.backends.Backend (docs/broadcast.md).",
                id="dualstream.E005",
            )
        ]
    return []
