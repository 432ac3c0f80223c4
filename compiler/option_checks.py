"""Range checks of the numeric options, at the CLI and at the Python API.

A bad number caught here fails at once with one message naming the option.
Caught later it surfaced as an AssertionError in the solver (``--time-limit
-1``, ``--max-cycles 0``), an overflow after the model was lowered
(``--time-limit inf``) or not at all (``--workers 0`` ran with one worker).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from joule.errors import OptionError


@dataclass(frozen=True)
class _Range:
    """Accepted values: ``low`` < v (``low`` <= v when ``closed``) and v <= ``high``."""

    meaning: str
    low: float
    closed: bool
    high: float | None
    integer: bool
    example: str

    def problem(self, value: object) -> str | None:
        """Why ``value`` is refused, or None."""
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return "must be a whole number" if self.integer else "must be a number"
        number = float(value)  # type: ignore[arg-type]  (a numbers.Real)
        if not math.isfinite(number):
            return "must be a finite number"
        low_ok = number >= self.low if self.closed else number > self.low
        if self.high is not None and not (low_ok and number <= self.high):
            return f"must be in ({self.low:g}, {self.high:g}]"
        if not low_ok:
            return f"must be {'at least' if self.closed else 'greater than'} {self.low:g}"
        return None


_RANGES: dict[str, _Range] = {
    "time_limit": _Range("the per-layer solver budget in seconds", 0, False, None, False, "2"),
    "workers": _Range("how many layers are solved in parallel", 1, True, None, True, "2"),
    "samples": _Range(
        "how many valid mappings the random mapper draws", 1, True, None, True, "1000"
    ),
    "max_cycles": _Range("the latency cap per layer, in cycles", 1, True, None, True, "100000"),
    "min_utilization": _Range("the PE-utilisation floor, a fraction", 0, False, 1, False, "0.5"),
}
_RANGES["time_limit_s"] = _RANGES["time_limit"]  # BenchConfig's name for it


def check_options(caller: str, *, flags: bool = False, **values: object) -> None:
    """Raise OptionError for the first value out of range; None means "not given".

    ``caller`` names the command (``joule compile``, with ``flags=True`` for
    ``--time-limit`` spelling) or the function (``compile_model``) in the message.
    """
    for name, value in values.items():
        rule = _RANGES[name]
        problem = None if value is None else rule.problem(value)
        if problem is None:
            continue
        if flags:
            shown = "--" + name.replace("_", "-")
            where, example = f"{caller} {shown}", f"{shown} {rule.example}"
        else:
            shown = name
            where, example = f"{caller}({name}=...)", f"{name}={rule.example}"
        raise OptionError(
            f"{shown} {problem}, not {value!r}",
            where=where,
            hint=f"give {rule.meaning}, e.g. {example}",
        )
