"""Settings for dualstream: one ``DUALSTREAM`` dict in ``settings.py``, its defaults in one table per part.

    DUALSTREAM = {
        "HEARTBEAT": 10.0,
        "BROADCAST": {"BACKEND": "redis", "URL": "redis://127.0.0.1:6379/0"},   # dualstream/broadcast/conf.py
        "LLM": {"API_KEYS": ["sk-..."]},                                          # dualstream/llm/conf.py
    }

The core options are the top level; ``BROADCAST`` and ``LLM`` are sections,
each read through a ``Settings`` of its own made by ``DUALSTREAM.section()``.
Values are read on every access, so ``override_settings`` works in tests. A
view attribute declared as ``Setting("NAME")`` reads the setting unless a
subclass or ``as_view()`` overrides it. ``dualstream/checks.py`` checks every
key and value against the tables and rules below (``manage.py check``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.module_loading import import_string

T = TypeVar("T")


class DualstreamDeprecationWarning(DeprecationWarning):
    """A setting or name that a later release of dualstream will stop reading."""


@dataclass(frozen=True)
class Rule:
    """What a setting's value must be: ``accepts(value)``, described for error messages and ``manage.py check``."""

    describe: str
    accepts: Callable[[Any], bool]
    #: The system check's id for a value this rule refuses.
    id: str = "dualstream.E002"


def _number(value: Any) -> bool:
    return type(value) in (int, float)  # not bool, although bool is an int


def seconds(*, optional: bool = False) -> Rule:
    """A positive number of seconds (or None, when ``optional``)."""
    return Rule(
        "a positive number of seconds" + (", or None" if optional else ""),
        lambda v: (optional and v is None) or (_number(v) and v > 0),
    )


def count(*, minimum: int = 1, optional: bool = False) -> Rule:
    """An int of at least ``minimum`` (or None, when ``optional``)."""
    return Rule(
        f"an int of at least {minimum}" + (", or None" if optional else ""),
        lambda v: (optional and v is None) or (type(v) is int and v >= minimum),
    )


def one_of(*choices: str) -> Rule:
    return Rule("one of " + ", ".join(f'"{c}"' for c in choices), lambda v: v in choices, id="dualstream.E003")


def inferred_rule(default: Any) -> Rule | None:
    """The rule of a setting without one of its own, from its default's type (None: any value)."""
    if type(default) is bool:
        return Rule("True or False", lambda v: type(v) is bool)
    if type(default) is int:
        return count(minimum=min(default, 1))
    if type(default) is float:
        return seconds()
    if type(default) is str:
        return Rule("a str", lambda v: isinstance(v, str))
    return None


class Settings:
    """One part of the settings (the core options, or a section of ``DUALSTREAM``) over its defaults."""

    def __init__(
        self,
        setting_name: str,
        defaults: Mapping[str, Any],
        *,
        rules: Mapping[str, Rule] | None = None,
        key: str | None = None,
        old_name: str | None = None,
    ) -> None:
        self.setting_name = setting_name
        #: The defaults table; read, never copied, so keys added to it later count too.
        self.defaults = defaults
        self.rules: Mapping[str, Rule] = rules or {}
        #: This part's key in ``DUALSTREAM`` (None: the top level).
        self.key = key
        #: A top-level setting this section used to be (read with a ``DualstreamDeprecationWarning``).
        self.old_name = old_name
        #: The sections of this dict, by key: ``BROADCAST``, ``LLM``.
        self.sections: dict[str, Settings] = {}

    def section(
        self,
        key: str,
        defaults: Mapping[str, Any],
        *,
        rules: Mapping[str, Rule] | None = None,
        old_name: str | None = None,
    ) -> Settings:
        """The settings in ``DUALSTREAM[key]``, a dict of their own over ``defaults``."""
        part = self.sections[key] = Settings(self.setting_name, defaults, rules=rules, key=key, old_name=old_name)
        return part

    @property
    def label(self) -> str:
        """How users write this dict: ``DUALSTREAM`` or ``DUALSTREAM["BROADCAST"]``."""
        return self.setting_name if self.key is None else f'{self.setting_name}["{self.key}"]'

    def project(self) -> Any:
        """The project's dict for this part (``{}`` when it sets none), as written: checks report a non-dict."""
        top = getattr(settings, self.setting_name, None) or {}
        if self.key is None:
            return top
        if isinstance(top, Mapping) and self.key in top:
            return top[self.key]
        if self.old_name is not None and hasattr(settings, self.old_name):
            warnings.warn(
                f"The {self.old_name} setting is deprecated: move it to {self.label}.",
                DualstreamDeprecationWarning,
                stacklevel=3,
            )
            return getattr(settings, self.old_name)
        return {}

    def rule(self, name: str) -> Rule | None:
        """The rule for ``name``'s value: its own, or one inferred from its default."""
        rule = self.rules.get(name)
        return rule if rule is not None else inferred_rule(self.defaults.get(name))

    def problem(self, name: str, value: Any) -> Rule | None:
        """The rule ``value`` breaks, if any."""
        rule = self.rule(name)
        return rule if rule is not None and not rule.accepts(value) else None

    def describe_problem(self, name: str, value: Any, rule: Rule) -> str:
        return f'{self.label}["{name}"] is {value!r}; it must be {rule.describe}.'

    def get(self, name: str, *, strict: bool = True) -> Any:
        """The value of one setting: the project's (checked against its rule), or the default.

        A bad value raises ``ImproperlyConfigured`` naming the setting and what
        it must be, rather than failing later in whatever uses it; not when
        ``strict`` is off (a class attribute read while the URLconf loads, which
        must not fail before ``manage.py check`` can report the value).
        """
        project = self.project()
        if not isinstance(project, Mapping):
            if not strict:
                return self.defaults[name]
            raise ImproperlyConfigured(f"{self.label} is {project!r}; it must be a dict (dualstream.E001).")
        if name not in project:
            return self.defaults[name]
        value = project[name]
        rule = self.problem(name, value) if strict else None
        if rule is not None:
            raise ImproperlyConfigured(f"{self.describe_problem(name, value, rule)} ({rule.id}: see manage.py check)")
        if name.endswith("_ENCODER") and isinstance(value, str):
            value = import_string(value)
        return value

    def options(self) -> dict[str, Any]:
        """Every setting of this part: the project's values over the defaults, as written."""
        return {**self.defaults, **self.project()}


class Setting(Generic[T]):
    """A class attribute whose default is a setting, read per access so tests can override it.

    A plain class attribute would freeze the setting at import time. Assigning
    on an instance (``as_view(heartbeat=None)`` does so) shadows it.
    """

    def __init__(self, name: str, source: Settings | None = None) -> None:
        self.name = name
        self.source = source or DUALSTREAM

    @overload
    def __get__(self, instance: None, owner: type) -> T: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...
    def __get__(self, instance: object | None, owner: type | None = None) -> T:
        # Read on the class (Django's as_view() checks its arguments with hasattr()): unchecked.
        value: T = self.source.get(self.name, strict=instance is not None)
        return value


#: The core options: ``DUALSTREAM``'s top level. Each is also a view attribute (README, docs/reference.md).
DEFAULTS: dict[str, Any] = {
    # Seconds of silence after which a keep-alive comment is sent; None disables.
    "HEARTBEAT": 15.0,
    # Mode used when neither a query parameter nor Accept decides: "json", "sse" or "ndjson".
    "DEFAULT_MODE": "json",
    # Encoder for every JSON value dualstream writes (a json.JSONEncoder subclass or its dotted path).
    "JSON_ENCODER": DjangoJSONEncoder,
    # Bytes of encoded output that may wait for a slow client before produce() is paused.
    "BUFFER_SIZE": 64 * 1024,
    # Give back the thread Django keeps per request once a stream has started and holds no
    # database connection (dualstream/threads.py): thousands of idle streams, not thousands of threads.
    "RELEASE_REQUEST_THREAD": True,
    # Rows a QuerySetView fetches per hop to the database thread (QuerySet.aiterator()'s default).
    "CHUNK_SIZE": 2000,
    # Seconds a client may read nothing while output waits for it; then produce() is closed and the
    # response abandoned (the end's reason is "send_timeout"). None: never.
    "SEND_TIMEOUT": 60.0,
    # Seconds after which a stream is cut as at shutdown (a retry hint, no "done"). None: never.
    "MAX_DURATION": None,
    # Streams open at once in this process; beyond it a 503 with Retry-After. None: no limit.
    "MAX_STREAMS": None,
    # Items a buffered batch answer may hold; beyond it a 400 pointing to the stream modes. None: no limit.
    "MAX_BATCH_ITEMS": None,
    # Milliseconds a client is told to wait before reconnecting to a stream the server cut
    # (shutdown, max_duration, Reconnect): the SSE "retry:" field, Retry-After of a 503.
    "RECONNECT_RETRY": 1000,
    # Cut open streams when the server is told to stop (SIGTERM/SIGINT; dualstream/lifecycle.py).
    "HANDLE_SHUTDOWN": True,
}

DUALSTREAM = Settings(
    "DUALSTREAM",
    DEFAULTS,
    rules={
        "HEARTBEAT": seconds(optional=True),
        "DEFAULT_MODE": one_of("json", "sse", "ndjson"),
        "JSON_ENCODER": Rule(
            "a json.JSONEncoder subclass or its dotted path", lambda v: isinstance(v, str | type), "dualstream.E004"
        ),
        "SEND_TIMEOUT": seconds(optional=True),
        "MAX_DURATION": seconds(optional=True),
        "MAX_STREAMS": count(optional=True),
        "MAX_BATCH_ITEMS": count(optional=True),
        "RECONNECT_RETRY": count(minimum=0),
    },
)


def get(name: str) -> Any:
    """The value of one core setting: the project's, or the default."""
    return DUALSTREAM.get(name)
