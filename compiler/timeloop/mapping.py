"""Read a mapping as Timeloop writes it, as a Joule Mapping for a Joule target.

Two forms are read:

* YAML with a top-level ``mapping:`` list (``timeloop-mapper.map.yaml``, the
  ``mapping:`` of ``parsed-processed-input.yaml``, a v0.4 mapping, a
  hand-written one): entries ``{target, type:
  temporal|spatial|dataspace|datatype|bypass, factors, permutation, split, keep,
  bypass}``;
* the printed loop nest ``timeloop-mapper.map.txt`` / ``timeloop-model.map.txt``.

Timeloop permutations list loops innermost first; Joule's are outermost first.
Spatial factors of a level are the fan-out below it; ``split`` sends the first
``split`` dims of the permutation to the X axis and the rest to Y (without a
split: X, or for the second container below a level, Y, as in Timeloop's arch).
Timeloop's zero-capacity container levels (``inter_PE_column_spatial`` /
``PE_column``, ``inter_PE_spatial`` / ``PE``) are not Joule levels: their
spatial loops are those of the fan-out below the nearest target level above
them (below ``shared_glb`` on eyeriss), outer container first. Factors of 1 are
dropped; Timeloop dim M is Joule's K, unless a ``joule-dims.yaml`` beside the
file (Joule's exports) names the dims.

Imperfect factors: a residual end (``M=4,1`` in factors, ``for M in [0:4,1)`` in
a printed map) is checked against the one Joule derives from the factors and the
extent when the layer is known; the outermost loop of a dim always runs its
residual end, so that is its Joule factor (docs/imperfect-outputs.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from joule.errors import MappingError
from joule.ir.loopnest import LoopNest, Role
from joule.mapping import Axis, LevelLoops, Loop, Mapping, residual_ends
from joule.targets.spec import Target
from joule.timeloop.problem import dims_beside, joule_dim, yaml_problem

_ROLES: dict[str, Role] = {"weights": "weight", "inputs": "input", "outputs": "output"}
# NAME=END or NAME=END,RESIDUAL_END (Timeloop's src/mapping/parser.cpp, ParseUserFactors).
_FACTOR = re.compile(r"([A-Za-z_][A-Za-z0-9_]*?)\s*=?\s*(\d+)(?:,(\d+))?")
_HEADER = re.compile(r"^([A-Za-z_][\w.\-]*)\s*\[(.*)\]\s*$")
_LOOP = re.compile(
    r"^\|?\s*for\s+(\w+)\s+in\s+\[0:(\d+)(?:,(\d+))?\)\s*(?:\(Spatial-([XY])\))?\s*$"
)
_FORMS = "give timeloop-mapper.map.yaml, a parsed-processed-input.yaml or a .map.txt"


@dataclass
class _Level:
    """What one Timeloop level (storage or container) contributes, outermost loop first."""

    name: str
    temporal: list[tuple[str, int]] = field(default_factory=list)
    spatial: list[tuple[str, int, Axis | None]] = field(default_factory=list)  # None: no split
    keep: set[Role] | None = None
    # (spatial?, Joule dim) -> residual end, where Timeloop gives one below the end
    residual: dict[tuple[bool, str], int] = field(default_factory=dict)


def load_mapping(path: str | Path, target: Target, nest: LoopNest | None = None) -> Mapping:
    """The Joule mapping of ``target`` that the Timeloop mapping in ``path`` describes."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise MappingError(
            f"cannot read Timeloop mapping: {exc.strerror}", where=str(path), hint=_FORMS
        ) from None
    except UnicodeDecodeError:
        raise MappingError(
            "the Timeloop mapping is not a text file (not UTF-8)", where=str(path), hint=_FORMS
        ) from None
    names = dims_beside(path)
    if path.suffix == ".txt" or "<< Compute >>" in text:
        levels = _parse_map_txt(text, str(path), names)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MappingError(
                f"Timeloop mapping is not valid YAML: {yaml_problem(exc)}",
                where=str(path),
                hint=_FORMS,
            ) from None
        levels = mapping_levels_from_yaml(data, str(path), names)
    return to_joule(levels, target, nest, source=str(path))


def mapping_levels_from_yaml(
    data: Any, source: str, names: dict[str, str] | None = None
) -> list[_Level]:
    """Per Timeloop level, outermost first, from a YAML ``mapping:`` list.

    ``names``: Timeloop dim -> Joule dim (default: Timeloop's M is Joule's K).
    """
    entries = data.get("mapping") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise MappingError("no top-level 'mapping:' list", where=source, hint=_FORMS)
    order: list[str] = []
    levels: dict[str, _Level] = {}
    for i, entry in enumerate(entries):
        try:
            name = str(entry["target"])
            kind = str(entry.get("type", "temporal"))
        except (KeyError, TypeError, AttributeError):
            raise MappingError(
                f"mapping entry {i} has no 'target'",
                where=source,
                hint="see Timeloop's v0.4 format",
            ) from None
        if name not in levels:
            levels[name] = _Level(name)
            order.append(name)
        lvl = levels[name]
        where = f"{source}: mapping[{i}] ({name} {kind})"
        if kind in ("dataspace", "datatype", "bypass"):
            keep = {_role(t, where) for t in _names(entry.get("keep"), "keep", where)}
            lvl.keep = keep if lvl.keep is None else lvl.keep | keep
        elif kind == "temporal":
            factors, residual = _factors(entry.get("factors"), where)
            perm = _permutation(entry.get("permutation"), factors, where)
            lvl.temporal = [
                (joule_dim(d, names), factors.get(d, 1))
                for d in reversed(perm)
                if factors.get(d, 1) > 1
            ]
            lvl.residual.update({(False, joule_dim(d, names)): r for d, r in residual.items()})
        elif kind == "spatial":
            factors, residual = _factors(entry.get("factors"), where)
            lvl.residual.update({(True, joule_dim(d, names)): r for d, r in residual.items()})
            perm = _permutation(entry.get("permutation"), factors, where)
            split = _split(entry.get("split"), where)
            axes: list[Axis | None] = [
                None if split is None else "X" if k < split else "Y" for k in range(len(perm))
            ]
            # Innermost first within each axis as for temporal loops: X loops sit outside Y.
            xs = [
                (joule_dim(d, names), factors.get(d, 1), a) for d, a in zip(perm, axes, strict=True)
            ]
            lvl.spatial = [s for s in reversed(xs) if s[1] > 1]
            lvl.spatial.sort(key=lambda s: s[2] or "")
        else:
            raise MappingError(
                f"unknown mapping entry type {kind!r}",
                where=where,
                hint="use type: temporal, spatial, dataspace, datatype or bypass",
            )
    return _outermost_first([levels[n] for n in order])


def _outermost_first(levels: list[_Level]) -> list[_Level]:
    """timeloop-mapper lists levels innermost first (psum_spad ... DRAM); others outermost first."""
    names = [lvl.name.lower() for lvl in levels]
    if "dram" in names and names.index("dram") == len(names) - 1 and len(names) > 1:
        return levels[::-1]
    return levels


def _parse_map_txt(text: str, source: str, names: dict[str, str] | None) -> list[_Level]:
    levels: list[_Level] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or set(line) <= {"-"} or "<< Compute >>" in line:
            continue
        header = _HEADER.match(line)
        if header:
            lvl = _Level(header.group(1))
            lvl.keep = {
                _ROLES[m.lower()]
                for m in re.findall(r"(\w+):\d+", header.group(2))
                if m.lower() in _ROLES
            }
            levels.append(lvl)
            continue
        loop = _LOOP.match(line)
        if loop is None or not levels:
            raise MappingError(
                f"cannot read line {number} of the printed map: {raw.strip()!r}",
                where=source,
                hint="expected 'LEVEL [ ... ]' headers and '| for D in [0:N) (Spatial-X)' loops",
            )
        dim, factor = joule_dim(loop.group(1), names), int(loop.group(2))
        if loop.group(3) and int(loop.group(3)) != factor:
            levels[-1].residual[(bool(loop.group(4)), dim)] = int(loop.group(3))
        if factor > 1:
            if loop.group(4):
                levels[-1].spatial.append((dim, factor, loop.group(4)))  # type: ignore[arg-type]
            else:
                levels[-1].temporal.append((dim, factor))
    if not levels:
        raise MappingError("no levels in the printed map", where=source, hint=_FORMS)
    return levels


def to_joule(
    levels: list[_Level], target: Target, nest: LoopNest | None = None, *, source: str = "mapping"
) -> Mapping:
    """Attach every Timeloop level's loops to the target's levels; check names and bypass."""
    _settle_residuals(levels, nest, source)
    by_name = {lvl.name.lower(): i for i, lvl in enumerate(target.levels)}
    temporal: list[list[Loop]] = [[] for _ in target.levels]
    spatial: list[list[Loop]] = [[] for _ in target.levels]
    above: int | None = None  # the target level a container's fan-out hangs from
    containers = 0  # containers seen below it
    for lvl in levels:
        default: Axis = "X"
        index = by_name.get(lvl.name.lower())
        if index is None:
            if lvl.temporal:
                raise MappingError(
                    f"Timeloop level {lvl.name!r} has temporal loops but target "
                    f"{target.name!r} has no such level",
                    where=source,
                    hint=f"the target's levels are {[x.name for x in target.levels]}",
                )
            # Without a split, Timeloop's arch decides: the outer container is the
            # meshX fan-out (PE columns), the next one meshY (PEs in a column).
            default = "X" if containers == 0 else "Y"
            containers += 1
            if not lvl.spatial:
                continue
            if above is None or target.fanout(above) == (1, 1):
                below = (
                    "above every level" if above is None else f"below {target.levels[above].name}"
                )
                raise MappingError(
                    f"cannot place the spatial loops of Timeloop container {lvl.name!r}: "
                    f"target {target.name!r} has no fan-out {below}",
                    where=source,
                    hint="list levels outermost first; a container's loops spread the fan-out "
                    "below the target level above it",
                )
            index = above
        else:
            above, containers = index, 0
            keeps = target.levels[index].keeps
            if lvl.keep is not None and lvl.keep != set(keeps):
                raise MappingError(
                    f"the mapping keeps {sorted(lvl.keep)} at {lvl.name} but target "
                    f"{target.name!r} keeps {sorted(keeps)} there",
                    where=source,
                    hint="Joule's targets fix bypass per level; use a target that matches",
                )
        temporal[index] += [Loop(d, f) for d, f in lvl.temporal]
        spatial[index] += [Loop(d, f, a or default) for d, f, a in lvl.spatial]
    if nest is not None:
        known = set(nest.dim_names)
        for loops in (*temporal, *spatial):
            for lp in loops:
                if lp.dim not in known:
                    raise MappingError(
                        f"the mapping has a loop over {lp.dim}, not a dim of @{nest.name}",
                        where=source,
                        hint=f"the layer's dims are {sorted(known)}",
                    )
    return Mapping(
        tuple(
            LevelLoops(lvl.name, tuple(temporal[i]), tuple(spatial[i]))
            for i, lvl in enumerate(target.levels)
        )
    )


def _settle_residuals(levels: list[_Level], nest: LoopNest | None, source: str) -> None:
    """Per dim given a residual end: its outermost loop becomes its residual end (Timeloop
    runs no more of it, nest-analysis.cpp ``IsLastGlobalIteration_``) and, with the layer
    known, every residual end must be Joule's: the dim's digit of ``extent - 1`` plus one."""
    dims = {d for lvl in levels for _, d in lvl.residual}
    for dim in sorted(dims):
        # Timeloop's loops of the dim, outermost first: (level, spatial?, index, factor).
        seq = [
            (lvl, spatial, j, lp[1])
            for lvl in levels
            for spatial, loops in ((False, lvl.temporal), (True, lvl.spatial))
            for j, lp in enumerate(loops)
            if lp[0] == dim
        ]
        if not seq:
            continue
        lvl, spatial, j, factor = seq[0]
        given = lvl.residual.get((spatial, dim), factor)
        if given < factor:  # the outermost loop: write its residual end as its factor
            loops: list[Any] = lvl.spatial if spatial else lvl.temporal
            loops[j] = (dim, given, *loops[j][2:])
            seq[0] = (lvl, spatial, j, given)
        if nest is None or dim not in nest.extents:
            continue
        extent = nest.extents[dim]
        factors = [f for *_, f in seq]
        want = residual_ends(extent, factors)
        for (lvl, spatial, _j, f), end in zip(seq, want, strict=True):
            got = lvl.residual.get((spatial, dim), f)
            if got != end:
                raise MappingError(
                    f"the residual end of {dim} at {lvl.name} is {got}, but factors {factors} "
                    f"(outermost first) over extent {extent} make it {end}",
                    where=source,
                    hint="residual ends are the digits of extent - 1 in the factors' mixed "
                    "radix, plus one (Timeloop's parser checks the same)",
                )


def _role(name: Any, where: str) -> Role:
    role = _ROLES.get(str(name).lower())
    if role is None:
        raise MappingError(
            f"unknown data space {name!r}", where=where, hint="Weights/Inputs/Outputs"
        )
    return role


def _names(value: Any, key: str, where: str) -> list[Any]:
    """A list of names; one bare name is a list of one (``keep: Weights``)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise MappingError(
            f"{key} must be a list of data spaces, not {value!r}",
            where=where,
            hint=f"e.g. {key}: [Weights, Inputs]",
        )
    return value


def _split(value: Any, where: str) -> int | None:
    """The number of permutation dims on the X axis, or None when not given."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MappingError(
            f"split must be a whole number >= 0, not {value!r}",
            where=where,
            hint="split: N sends the first N dims of the permutation to X, the rest to Y",
        )
    return value


def _factors(value: Any, where: str) -> tuple[dict[str, int], dict[str, int]]:
    """``C1 M2``, ``C=1,M=2`` or ``[C=1, M=2]`` -> {dim: factor} (Timeloop names), and
    {dim: residual end} for ``M=4,1`` (end 4, residual end 1) where it is below the end."""
    if value is None:
        return {}, {}
    text = " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    found = _FACTOR.findall(text)
    if not found and text.strip():
        raise MappingError(f"cannot read factors {value!r}", where=where, hint="e.g. 'C1 M2 R3'")
    out = {d: int(f) for d, f, _ in found}
    residual = {d: int(r) for d, f, r in found if r and int(r) != int(f)}
    if any(not 1 <= r <= out[d] for d, r in residual.items()):
        raise MappingError(
            f"a residual end outside 1..end in {value!r}",
            where=where,
            hint="write NAME=END,RESIDUAL with 1 <= RESIDUAL <= END",
        )
    if any(f == 0 for f in out.values()):
        raise MappingError(
            f"factor 0 (Timeloop's 'fill in the rest') in {value!r}",
            where=where,
            hint="give explicit factors: Joule scores complete mappings",
        )
    return out, residual


def _permutation(value: Any, factors: dict[str, int], where: str) -> list[str]:
    """Innermost first; dims with factors but absent from the permutation go outermost."""
    if value is None:
        perm: list[str] = []
    elif isinstance(value, list):
        perm = [str(v) for v in value]
    else:
        text = str(value).replace(",", " ").split()
        perm = text if len(text) > 1 else list(str(value).strip())
    return perm + [d for d in factors if d not in perm]
