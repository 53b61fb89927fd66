"""How a setting is declared: once, on its dataclass field, with its config key, help text and rule.

A settings dataclass in :mod:`lib.config` writes each overridable field as::

    deletion_window_days: int = setting("kmsDeletionWindowDays", "KMS key deletion window", Range(7, 30, " days"))

From that one declaration the rest is derived, so that they cannot drift apart:

- the override table (:func:`declared_settings`): which Pulumi config key sets which field, parsed by the
  field's type (``int``, ``bool``, ``float``, ``str``, ``str | None``);
- the known-key list that rejects typos;
- the generic part of validation (:func:`rule_violation`): the value against the field's rule;
- the ``config:`` block of ``Pulumi.yaml`` and the configuration table of the README
  (``python -m tools.config_reference``; a unit test fails when either is stale).

Pure Python: no Pulumi import, so the pure tests and tools use it directly.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Key of the field metadata entry that holds a :class:`Setting`.
METADATA_KEY = "scalepayments.setting"


class Rule(Protocol):
    """What values a setting allows; ``describe()`` is the "allowed: ..." part of an error message."""

    def allows(self, value: Any) -> bool:
        """True when ``value`` is acceptable."""

    def describe(self) -> str:
        """The allowed values, in words (e.g. ``7 to 30 days``)."""


@dataclass(frozen=True)
class Range:
    """A closed numeric interval ``low..high`` (either end may be open with None)."""

    low: float | None
    high: float | None
    unit: str = ""

    def allows(self, value: Any) -> bool:
        """``low <= value <= high``."""
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def describe(self) -> str:
        """``7 to 30 days``, ``at least 1``, ``at most 100``."""
        if self.high is None:
            return f"at least {_number(self.low)}{self.unit}"
        if self.low is None:
            return f"at most {_number(self.high)}{self.unit}"
        return f"{_number(self.low)} to {_number(self.high)}{self.unit}"


def _number(value: float | None) -> str:
    """``2000000000`` rather than ``2e+09``; ``1.5`` stays ``1.5``."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass(frozen=True)
class OneOf:
    """One of a fixed list of values."""

    values: tuple[Any, ...]

    def allows(self, value: Any) -> bool:
        """``value in values``."""
        return value in self.values

    def describe(self) -> str:
        """``one of [0, 1, 5]``."""
        return f"one of {list(self.values)}"


@dataclass(frozen=True)
class Matches:
    """A string matching a regular expression (None passes: an unset optional value)."""

    pattern: str
    description: str

    def allows(self, value: Any) -> bool:
        """Full match of ``pattern``."""
        return value is None or re.fullmatch(self.pattern, str(value)) is not None

    def describe(self) -> str:
        """The description given (regular expressions are not for humans)."""
        return self.description


@dataclass(frozen=True)
class Satisfies:
    """Any predicate, with its description."""

    predicate: Callable[[Any], bool]
    description: str

    def allows(self, value: Any) -> bool:
        """``predicate(value)``."""
        return self.predicate(value)

    def describe(self) -> str:
        """The description given."""
        return self.description


@dataclass(frozen=True)
class Setting:
    """The declaration of one overridable field: Pulumi config key, help text and rule.

    For fields of per-service settings the key is a suffix: ``Image`` becomes ``apiImage``,
    ``paymentImage``, ``notificationImage``.
    """

    key: str
    help: str
    rule: Rule | None = None


def setting(key: str, help: str, rule: Rule | None = None, *, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field declared as the setting ``key`` (see the module docstring)."""
    metadata = {METADATA_KEY: Setting(key, help, rule)}
    if default is dataclasses.MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


# --- parsing from the field's type ------------------------------------------------------------------


class SettingValueError(ValueError):
    """A raw config value that does not parse as the field's type; the message says what is allowed."""


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise SettingValueError("is not a boolean; allowed: true or false")


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SettingValueError("is not an integer") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingValueError("is not a number") from None


def _optional_str(raw: str) -> str | None:
    return raw or None


def _str_tuple(raw: str) -> tuple[str, ...]:
    """A comma-separated list (Pulumi config values are strings)."""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


#: Parser and Pulumi.yaml type per annotation.
_PARSERS: dict[Any, tuple[Callable[[str], Any], str]] = {
    bool: (_bool, "boolean"),
    int: (_int, "integer"),
    float: (_float, "number"),
    str: (str, "string"),
    str | None: (_optional_str, "string"),
    tuple[str, ...]: (_str_tuple, "string"),
}


@dataclass(frozen=True)
class DeclaredSetting:
    """A setting with where it lives: the settings section (field of the root) and the field name."""

    setting: Setting
    section: str  # "" for a field of the root settings class itself
    field_name: str
    annotation: Any

    @property
    def key(self) -> str:
        """The config key (for per-service settings, the suffix)."""
        return self.setting.key

    @property
    def yaml_type(self) -> str:
        """``string``, ``integer``, ``boolean`` or ``number``, as Pulumi.yaml declares config types."""
        return _PARSERS[self.annotation][1]

    def parse(self, raw: str) -> Any:
        """The raw config string as the field's type; raises :class:`SettingValueError`."""
        return _PARSERS[self.annotation][0](raw)


def _hints(cls: type) -> dict[str, Any]:
    # Resolved in the module of the settings classes (they use postponed annotations).
    return typing.get_type_hints(cls)


def _normalise(annotation: Any) -> Any:
    """``Optional[str]`` and ``str | None`` are the same annotation to the parser table."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = set(typing.get_args(annotation))
        if args == {str, type(None)}:
            return str | None
    return annotation


def fields_of(cls: type, section: str = "") -> list[DeclaredSetting]:
    """The declared settings among the fields of ``cls``, in field order."""
    hints = _hints(cls)
    found: list[DeclaredSetting] = []
    for item in dataclasses.fields(cls):
        declared = item.metadata.get(METADATA_KEY)
        if declared is None:
            continue
        annotation = _normalise(hints[item.name])
        if annotation not in _PARSERS:
            raise TypeError(f"{cls.__name__}.{item.name}: no config parser for {annotation!r}")
        found.append(DeclaredSetting(declared, section, item.name, annotation))
    return found


def declared_settings(root: type, sections: Sequence[str]) -> list[DeclaredSetting]:
    """Every declared setting of ``root`` and of its settings sections, in declaration order."""
    hints = _hints(root)
    found = fields_of(root)
    for section in sections:
        found += fields_of(hints[section], section)
    return found


def rule_violation(declared: DeclaredSetting, value: Any) -> str | None:
    """The ``allowed`` text when ``value`` breaks the setting's rule, else None."""
    rule = declared.setting.rule
    if rule is None or rule.allows(value):
        return None
    return rule.describe()
