"""A mapping: how one loop nest is tiled, ordered and unrolled onto a target.

For every storage level (outermost first) an ordered list of temporal loops
(outermost first) and the spatial loops of the fan-out below that level, each
on array axis X or Y. The loop nest it denotes, outermost to innermost, is::

    level 0 temporal, level 0 spatial, level 1 temporal, level 1 spatial, ... , MAC

The tile a level holds (per instance) is the data touched by its own temporal
loops and everything inside them. A mapping is data: any mapper's output can be
scored by the model and any model can score a hand-written mapping.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from joule.errors import MappingError

Axis = Literal["X", "Y"]


@dataclass(frozen=True)
class Loop:
    dim: str
    factor: int
    axis: Axis | None = None  # None: temporal


@dataclass(frozen=True)
class LevelLoops:
    level: str
    temporal: tuple[Loop, ...] = ()
    spatial: tuple[Loop, ...] = ()


@dataclass(frozen=True)
class Mapping:
    levels: tuple[LevelLoops, ...]

    def factors(self, dim: str) -> list[int]:
        """All factors of ``dim``, outermost first (temporal then spatial per level)."""
        out = []
        for lvl in self.levels:
            out += [lp.factor for lp in lvl.temporal if lp.dim == dim]
            out += [lp.factor for lp in lvl.spatial if lp.dim == dim]
        return out

    def extent(self, dim: str) -> int:
        return math.prod(self.factors(dim))

    def level(self, name: str) -> LevelLoops:
        for lvl in self.levels:
            if lvl.level == name:
                return lvl
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "levels": [
                {
                    "level": lvl.level,
                    "temporal": [[lp.dim, lp.factor] for lp in lvl.temporal],
                    "spatial": [[lp.dim, lp.factor, lp.axis] for lp in lvl.spatial],
                }
                for lvl in self.levels
            ]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "mapping") -> Mapping:
        try:
            levels = []
            for lvl in data["levels"]:
                temporal = tuple(Loop(str(d), int(f)) for d, f in lvl.get("temporal", []))
                spatial = tuple(
                    Loop(str(d), int(f), _axis(a)) for d, f, a in lvl.get("spatial", [])
                )
                levels.append(LevelLoops(str(lvl["level"]), temporal, spatial))
        except (KeyError, TypeError, ValueError) as exc:
            raise MappingError(
                f"malformed mapping ({type(exc).__name__}: {exc})",
                where=source,
                hint='give {"levels": [{"level": NAME, "temporal": [[DIM, FACTOR], ...], '
                '"spatial": [[DIM, FACTOR, "X"|"Y"], ...]}, ...]}',
            ) from None
        return cls(tuple(levels))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def loops_text(self, indent: str = "  ", extents: dict[str, int] | None = None) -> str:
        """The mapping written out as nested loops, the way Timeloop prints a map; with
        the layer's ``extents``, a loop whose last run is a residual shows its residual
        end as Timeloop does (``[0:4,1)``)."""
        ends: dict[str, list[int]] = {}
        if extents is not None:
            for dim, extent in extents.items():
                ends[dim] = residual_ends(extent, [f for f in self.factors(dim) if f > 1])

        def bounds(lp: Loop) -> str:
            runs = ends.get(lp.dim)
            if lp.factor == 1 or not runs:
                return f"[0:{lp.factor})"
            last = runs.pop(0)
            return f"[0:{lp.factor})" if last == lp.factor else f"[0:{lp.factor},{last})"

        lines: list[str] = []
        depth = 0
        for lvl in self.levels:
            lines.append(f"{indent * depth}// {lvl.level}")
            for lp in lvl.temporal:
                lines.append(f"{indent * depth}for {lp.dim} in {bounds(lp)}")
                depth += 1
            for lp in lvl.spatial:
                pad = indent * depth
                lines.append(f"{pad}parallel-for {lp.dim} in {bounds(lp)} ({lp.axis})")
                depth += 1
        lines.append(f"{indent * depth}MAC")
        return "\n".join(lines)


def residual_ends(extent: int, factors: list[int]) -> list[int]:
    """Per loop (outermost first), its digit of ``extent - 1`` in the mixed radix of
    ``factors``, plus one: the iterations of its residual run (Timeloop's
    ``residual_end``; the factor itself where the factors divide the extent)."""
    out = []
    rest = extent - 1
    step = math.prod(factors)
    for f in factors:
        step //= f
        out.append(rest // step + 1)
        rest %= step
    return out


def _axis(value: Any) -> Axis:
    if value not in ("X", "Y"):
        raise ValueError(f"spatial axis must be 'X' or 'Y', not {value!r}")
    return value
