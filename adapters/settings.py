"""Declared config keys: every key of config.toml is a :class:`Setting` with its type,
default, description and the values it allows.

Adapters declare theirs next to their code (an :class:`AdapterKind` per ``kind`` of a
section, or a :class:`Section` for a section without kinds); workflow/config.py checks
a config against the declarations and docs/config.md is generated from them.

:func:`check_value` is the one checker: it returns the value (a number as float) or
raises ``BadInput`` naming the key, e.g. ``keys.algorithm 'rsa1024' unknown: use one of …``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from adapters.base import BadInput
from adapters.common.syntax import check_syntax

#: the declared types; "path" is a string resolved against the config file's directory;
#: "table" is a TOML table whose keys are ``choices`` (when given) and whose values are
#: of the ``items`` type (e.g. ``[effects.limits] notify = 4``)
TYPES = ("string", "path", "integer", "number", "boolean", "list", "table")


@dataclass(frozen=True)
class Setting:
    key: str
    type: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: True: the value must be above ``minimum``, not equal to it
    above_minimum: bool = False
    #: True: the value must be below ``maximum``, not equal to it
    below_maximum: bool = False
    #: "email", "host:port", "url", "command" (see adapters.common.syntax)
    syntax: str | None = None
    #: for lists: the type of each item, and its minimum
    items: str | None = None
    secret: bool = False
    #: for an adapter kind's key: the kind needs it set
    required: bool = False

    def __post_init__(self) -> None:
        if self.type not in TYPES or (self.items and self.items not in TYPES):
            raise TypeError(f"setting {self.key}: unknown type {self.type!r}")

    def allowed(self) -> str:
        """The allowed values, in words (for messages and docs); "" when any value of the type."""
        if self.choices:
            return "one of " + ", ".join(f"`{c}`" for c in self.choices)
        if self.minimum is not None and self.maximum is not None:
            upper = "below" if self.below_maximum else "at most"
            return f"at least {self.minimum:g}, {upper} {self.maximum:g}"
        if self.minimum is not None:
            what = "list items " if self.type == "list" else ""
            return f"{what}{'above' if self.above_minimum else 'at least'} {self.minimum:g}"
        if self.syntax:
            return {"email": "an e-mail address", "host:port": "`host:port`",
                    "host[:port]": "`host` or `host:port`", "url": "an http(s) URL", "command": "a command line (no shell)"}[self.syntax]
        return ""


@dataclass(frozen=True)
class Section:
    """A config section without kinds (or the keys every kind of a section shares)."""

    name: str
    description: str
    settings: tuple[Setting, ...]


@dataclass(frozen=True)
class AdapterKind:
    """One ``kind`` of a section (``[ca] kind = "acme"``): its keys and its factory.

    ``build(settings, wiring)`` makes the adapter from the section's checked values
    (paths resolved) and an :class:`adapters.registry.Wiring` (vault, clock, notifier).
    """

    section: str
    kind: str
    description: str
    settings: tuple[Setting, ...]
    build: Callable[..., Any] = field(compare=False)


_TYPE_WORDS = {"string": "a string", "path": "a path string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "list": "a list",
               "table": "a table"}


def _of_type(value: Any, kind: str) -> bool:
    if kind in ("string", "path"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    if kind == "table":
        return isinstance(value, dict)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_value(setting: Setting, value: Any, where: str) -> Any:
    """The value if ``setting`` allows it (a number as float), else BadInput naming ``where``."""
    if not _of_type(value, setting.type):
        raise BadInput(where, f"{where} must be {_TYPE_WORDS[setting.type]}")
    if setting.type == "table":
        return _check_table(setting, value, where)
    shown = "<hidden>" if setting.secret else repr(value)
    if setting.choices and value not in setting.choices:
        raise BadInput(where, f"{where} {shown} unknown: use one of {', '.join(setting.choices)}")
    if setting.type in ("integer", "number"):
        _check_range(setting, value, where, shown)
    if setting.type == "list":
        for item in value:
            if setting.items and not _of_type(item, setting.items):
                raise BadInput(where, f"{where} must be a list of {setting.items} values")
            if setting.minimum is not None and isinstance(item, (int, float)):
                _check_range(setting, item, where, repr(item))
    if setting.syntax and isinstance(value, str):
        check_syntax(setting.syntax, value, where, secret=setting.secret)
    return float(value) if setting.type == "number" else value


def _check_table(setting: Setting, value: dict, where: str) -> dict:
    """A table's keys are among ``choices`` (when given), its values of the ``items`` type."""
    item_setting = replace(setting, choices=())  # the range words say the values' bounds
    checked = {}
    for key, item in value.items():
        at = f"{where}.{key}"
        if setting.choices and key not in setting.choices:
            raise BadInput(at, f"unknown key {at}: use one of {', '.join(setting.choices)}")
        if setting.items and not _of_type(item, setting.items):
            raise BadInput(at, f"{at} must be {_TYPE_WORDS[setting.items]}")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            _check_range(item_setting, item, at, repr(item))
        checked[key] = float(item) if setting.items == "number" else item
    return checked


#: no setting is a count or a duration past this (a year in seconds is 3.2e7): larger
#: values are typing slips, and would overflow dates and C ints further on
NUMBER_CEILING = 1e9


def _check_range(setting: Setting, value: float, where: str, shown: str) -> None:
    low, high = setting.minimum, setting.maximum
    too_low = low is not None and (value <= low if setting.above_minimum else value < low)
    too_high = high is not None and (value >= high if setting.below_maximum else value > high)
    if too_low or too_high:
        raise BadInput(where, f"{where} {shown} out of range: must be {setting.allowed()}")
    if abs(value) > NUMBER_CEILING:
        raise BadInput(where, f"{where} {shown} out of range: at most {NUMBER_CEILING:.0e}")
