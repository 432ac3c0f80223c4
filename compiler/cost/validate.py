"""Is a mapping physically possible? Factors, fan-out and capacities, each violation named."""

from __future__ import annotations

import math

from joule.cost.nest import FlatNest, axis_terms, box_extents
from joule.cost.residual import ResidualNest, ragged
from joule.errors import MappingError
from joule.ir.loopnest import LoopNest
from joule.mapping import Mapping
from joule.targets.spec import StorageLevel, Target


def check_structure(nest: LoopNest, target: Target, mapping: Mapping) -> None:
    """Level names, dims, perfect factorisation and spatial fan-out limits."""
    names = [lvl.name for lvl in target.levels]
    seen = [lvl.level for lvl in mapping.levels]
    unknown = [name for name in seen if name not in names]
    if unknown:
        raise MappingError(
            f"mapping names levels {unknown} that target {target.name!r} does not have",
            hint=f"use the target's levels: {names}",
        )
    if [n for n in names if n in seen] != seen:
        raise MappingError("mapping lists the levels out of order", hint=f"order: {names}")
    extents = nest.extents
    for lvl in mapping.levels:
        for lp in (*lvl.temporal, *lvl.spatial):
            if lp.dim not in extents:
                raise MappingError(
                    f"level {lvl.level} has a loop over {lp.dim!r}, not a dim of @{nest.name}",
                    hint=f"dims are {list(extents)}",
                )
            if lp.factor < 1:
                raise MappingError(f"level {lvl.level}: factor {lp.factor} of {lp.dim} < 1")
    for dim, extent in extents.items():
        problem = canonical_problem(dim, extent, mapping.factors(dim))
        if problem is not None:
            raise MappingError(
                problem,
                where=f"layer @{nest.name}",
                hint="every dim's factors multiply to its extent, or (imperfect factors) the "
                "outermost loop of the dim runs ceil(extent / product of the others) times",
            )
    for lvl in mapping.levels:
        fx, fy = target.fanout(names.index(lvl.level))
        used = {"X": 1, "Y": 1}
        for lp in lvl.spatial:
            used[lp.axis or "X"] *= lp.factor
        if used["X"] > fx or used["Y"] > fy:
            raise MappingError(
                f"spatial loops below level {lvl.level} use {used['X']}x{used['Y']} "
                f"(X x Y) instances but the fan-out is {fx}x{fy}",
                where=f"layer @{nest.name}",
                hint="reduce the spatial factors or move them to a level with a fan-out",
            )


def canonical_problem(dim: str, extent: int, factors: list[int]) -> str | None:
    """Why ``factors`` (all of ``dim``'s, outermost first) are no mapping of a dim of
    ``extent``, or None: its outermost factor > 1 must run ceil(extent / the others)
    times (perfect factors: exactly extent / the others; docs/cost-model.md,
    "Imperfect factors")."""
    big = [f for f in factors if f > 1]
    if not big:
        return None if extent == 1 else f"no loop covers {dim} (extent {extent})"
    inner = math.prod(big[1:])
    outermost = -(-extent // inner)
    if big[0] == outermost:
        return None
    return (
        f"the factors of {dim} are {big} (outermost first) but {dim} has extent {extent}: "
        f"the outermost loop of {dim} must run ceil({extent}/{inner}) = {outermost} times"
    )


def check_capacity(nest: LoopNest, target: Target, flat: FlatNest) -> dict[str, dict[str, int]]:
    """Tile sizes per level and role; raises when one does not fit."""
    tiles: dict[str, dict[str, int]] = {}
    residual = ResidualNest(flat, nest.extents) if ragged(flat, nest.extents) else None
    for index, level in enumerate(target.levels):
        reach = flat.inside_reach[index] if residual is None else residual.held_reach(index)
        tiles[level.name] = {
            t.role: math.prod(box_extents(axis_terms(t), reach))
            for t in nest.tensors
            if t.role in level.keeps
        }
    check_tiles(nest, target, tiles)
    return tiles


def check_tiles(nest: LoopNest, target: Target, tiles: dict[str, dict[str, int]]) -> None:
    """Raise MappingError naming the first level whose tiles exceed its buffers (in bits:
    narrower values pack more of them into a buffer)."""
    for level in target.levels:
        sizes = tiles[level.name]
        for role, words in sizes.items():
            cap = level.capacity_bits_for(role)  # type: ignore[arg-type]
            if cap is not None and words * level.bits_of(role) > cap:  # type: ignore[arg-type]
                raise MappingError(
                    f"the {role} tile at level {level.name} is {words} words"
                    f"{_of_bits(level, role)}, more than its "
                    f"{level.capacity_for(role)}-word buffer",  # type: ignore[arg-type]
                    where=f"layer @{nest.name}",
                    hint="move loops of dims relevant to it to outer levels",
                )
        cap = level.capacity_bits()
        if cap is not None:
            used = sum(w * level.bits_of(r) for r, w in sizes.items())  # type: ignore[arg-type]
            if used > cap:
                total = sum(sizes.values())
                raise MappingError(
                    f"tiles at level {level.name} take {total} words "
                    f"({', '.join(f'{r} {w}{_of_bits(level, r)}' for r, w in sizes.items())}), "
                    f"more than its capacity of {level.capacity_words}",
                    where=f"layer @{nest.name}",
                    hint="move loops to outer levels so the tiles shrink",
                )


def _of_bits(level: StorageLevel, role: str) -> str:
    """' of B bits' where a precision makes a value narrower or wider than a word."""
    bits = level.bits_of(role)  # type: ignore[arg-type]
    return "" if bits == level.word_bits else f" of {bits} bits ({level.word_bits}-bit words)"
