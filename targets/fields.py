"""Typed reads of one target file's fields, each failing with file, line, field and rule.

The schema (:mod:`targets.schema`) reads every value through these helpers, so a
bad file always stops with one :class:`TargetError` that names the field path
(``levels[2].capacity_words``) and the rule it broke, never with a KeyError.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any, NoReturn

from joule.errors import TargetError
from joule.targets.yaml_doc import YamlDoc

FORMAT_HINT = 'the target format is described in README.md, section "Targets"'


class Fields:
    """Error reporting for one parsed file."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc

    def fail(self, field: str, rule: str, hint: str = "") -> NoReturn:
        """Stop with one TargetError naming the file, line, field and rule."""
        line = self._line(field)
        at = f", line {line}" if line else ""
        raise TargetError(
            f"{field} {rule}",
            where=f"{self.doc.file}{at}, field {field}",
            hint=hint or FORMAT_HINT,
        )

    def _line(self, field: str) -> int | None:
        """The field's line, else the closest enclosing field's (a missing key has none)."""
        while field:
            if field in self.doc.lines:
                return self.doc.lines[field]
            cut = max(field.rfind("."), field.rfind("["))
            field = field[:cut] if cut > 0 else ""
        return None

    def mapping(self, value: Any, field: str) -> Section:
        if not isinstance(value, dict):
            self.fail(field or "(top level)", f"must be a mapping of keys, got {_kind(value)}")
        return Section(self, value, field)

    def integer(self, value: Any, field: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"must be an integer, got {_kind(value)}")
        if value < minimum:
            rule = "positive" if minimum == 1 else f">= {minimum}"
            self.fail(field, f"must be {rule}, got {value}")
        return value

    def number(self, value: Any, field: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"must be a number, got {_kind(value)}")
        if not math.isfinite(value):
            self.fail(field, f"must be finite, got {value}")
        if value < 0 or (positive and value == 0):
            self.fail(field, f"must be {'positive' if positive else '>= 0'}, got {value}")
        return float(value)

    def text(self, value: Any, field: str, nonempty: bool = True) -> str:
        if not isinstance(value, str):
            self.fail(field, f"must be a string, got {_kind(value)}")
        if nonempty and not value.strip():
            self.fail(field, "must not be empty")
        return value.strip()

    def boolean(self, value: Any, field: str) -> bool:
        if not isinstance(value, bool):
            self.fail(field, f"must be true or false, got {_kind(value)}")
        return value

    def choice(self, value: Any, field: str, allowed: Iterable[str], what: str) -> str:
        """One name drawn from ``allowed``."""
        allowed = tuple(allowed)
        if not isinstance(value, str) or value not in allowed:
            close = difflib.get_close_matches(str(value), allowed, n=1)
            guess = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(
                field,
                f"is not a known {what}: {value!r}",
                hint=f"use one of {', '.join(allowed)}{guess}",
            )
        return value

    def names(self, value: Any, field: str, allowed: Iterable[str], what: str) -> tuple[str, ...]:
        """A list of distinct names drawn from ``allowed`` (roles, dims), in file order."""
        allowed = tuple(allowed)
        if not isinstance(value, list):
            self.fail(field, f"must be a list of {what}s, got {_kind(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or item not in allowed:
                close = difflib.get_close_matches(str(item), allowed, n=1)
                guess = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail(
                    f"{field}[{i}]",
                    f"is not a known {what}: {item!r}",
                    hint=f"use one of {', '.join(allowed)}{guess}",
                )
            if item in out:
                self.fail(f"{field}[{i}]", f"repeats {item!r}")
            out.append(item)
        return tuple(out)


class Section:
    """One mapping of the file (the top level, a level, a network), with its path."""

    def __init__(self, fields: Fields, data: dict[str, Any], path: str) -> None:
        self.fields = fields
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def get(self, key: str) -> Any:
        """The value of a required key."""
        if key not in self.data:
            self.fields.fail(self.at(key), "is missing (required)")
        return self.data[key]

    def only(self, allowed: Iterable[str]) -> None:
        """Reject keys the format does not know, suggesting the closest known one."""
        allowed = tuple(allowed)
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                known = f"known keys: {', '.join(allowed)}"
                hint = f"did you mean {close[0]!r}?" if close else known
                self.fields.fail(self.at(str(key)), "is not a known key", hint=hint)


def _kind(value: Any) -> str:
    """A value's type as the YAML author wrote it."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
