"""``--emit timeloop``: each layer's problem, architecture and mapping for Timeloop.

So that Timeloop, the tool everyone trusts, can score Joule's mapping. Per layer
two forms are written:

* ``timeloop-model.yaml`` + ``ERT.yaml``: Timeloop's processed flat format, the
  one the C++ ``timeloop-model`` reads (``timeloop-model timeloop-model.yaml
  ERT.yaml``), exactly as timeloopfe 0.4 dumps the v0.4 files below
  (``parsed-processed-input.yaml``); the ERT makes an Accelergy call unnecessary;
* ``problem.yaml``, ``arch.yaml``, ``mapping.yaml``: the v0.4 front-end format
  (``version: 0.4``, ``!Container`` / ``!Component`` nodes) for timeloopfe, as
  in the Timeloop/Accelergy exercises. The C++ tools refuse it.

Conventions (those of ``compiler/timeloop``, which reads both forms back):

* dims are single letters (Timeloop's factor parser reads ``[A-Za-z]+``): a
  convolution's K is Timeloop's M; a multi-letter dim (B0, K1) gets a free
  letter. ``joule-dims.yaml`` beside the files records the renaming
  (``joule_dims: {timeloop: joule}``), as timeloopfe rejects unknown keys;
* a coefficient c != 1 of dim D in a projection is a shape coefficient
  ``D<c>`` (e.g. ``P2`` for stride 2); offsets (padding) are dropped, as
  Timeloop has no padding;
* levels are the target's, outermost first; a fan-out below a level becomes
  containers, one per axis wider than 1: ``PE_column`` (meshX, ``split`` = all
  dims) and ``PE`` (meshY, ``split: 0``), as in eyeriss_like (with several
  fan-outs, ``<inner level>_column`` and ``<inner level>_row``). The processed
  format turns each into a dummy storage level ``inter_<container>_spatial``;
  permutations list loops innermost first and name every dim (factor-1 dims
  outermost);
* energies: the ERT gives every level's per-word read, write and update energy
  and the MAC's (pJ per action; each component's ``width`` equals its
  ``datawidth``, so one action moves one word; leakage 0);
* imperfect factors: a loop whose last (residual) run is shorter is written
  ``M=4,1`` (end 4, residual end 1), the form Timeloop's mapping parser reads
  (docs/imperfect-outputs.md); a mapping whose residual loops Timeloop would
  run in another order is refused (``timeloop_ends``).
"""

from __future__ import annotations

import itertools
import math
import re
import string
from pathlib import Path
from typing import Any

import yaml
from joule.errors import MappingError
from joule.ir.loopnest import LoopNest
from joule.mapping import Axis, Loop, Mapping, residual_ends
from joule.report.files import write_atomic
from joule.schedule import Schedule
from joule.targets.spec import StorageLevel, Target
from joule.timeloop.problem import DIMS_FILE

VERSION = 0.4
_SPACES = {"weight": "Weights", "input": "Inputs", "output": "Outputs"}
_HEADER = "# Timeloop v0.4 format, written by Joule ({what}). Dims (Timeloop=Joule): {dims}.\n"
_FLAT_HEADER = (
    "# Timeloop's processed input format, written by Joule ({what}).\n"
    "# Run: timeloop-model timeloop-model.yaml ERT.yaml\n"
)
_DIMS_HEADER = "# Joule's names of the Timeloop dims in this folder (Timeloop: Joule), for Joule.\n"
# Defaults timeloopfe 0.4 gives every storage level of the processed format.
_STORAGE_DEFAULTS: dict[str, Any] = {
    "has_power_gating": False,
    "n_banks": 2,
    "cluster_size": 1,
    "reduction_supported": True,
    "multiple_buffering": 1,
    "min_utilization": 0,
    "allow_overbooking": False,
}


class _Tagged(dict):
    """A YAML mapping written with a Timeloop v0.4 tag (``!Container``, ``!Component``)."""

    tag = ""


class _Container(_Tagged):
    tag = "!Container"


class _Component(_Tagged):
    tag = "!Component"


class _Dumper(yaml.SafeDumper):
    pass


def _tagged(dumper: yaml.SafeDumper, data: _Tagged) -> yaml.Node:
    return dumper.represent_mapping(data.tag, dict(data))


_Dumper.add_representer(_Container, _tagged)
_Dumper.add_representer(_Component, _tagged)


def timeloop_names(nest: LoopNest) -> dict[str, str]:
    """Joule dim -> Timeloop single-letter dim."""
    dims = [d for d, _ in nest.dims]
    conv = "K" in dims and "M" not in dims
    out: dict[str, str] = {}
    for d in dims:
        if conv and d == "K":
            out[d] = "M"
        elif len(d) == 1 and d.isalpha():
            out[d] = d.upper()
    free = [c for c in string.ascii_uppercase if c not in out.values() and c not in dims]
    for d in dims:
        if d not in out:
            out[d] = free.pop(0)
    return out


def dims_yaml(nest: LoopNest) -> dict[str, Any]:
    """``joule-dims.yaml``: Timeloop dim -> Joule dim, for Joule's readers."""
    return {"joule_dims": {t: j for j, t in timeloop_names(nest).items()}}


def problem_yaml(nest: LoopNest) -> dict[str, Any]:
    names = timeloop_names(nest)
    coefficients: dict[str, int] = {}
    spaces = []
    for role in ("weight", "input", "output"):
        tensor = nest.tensor(role)  # type: ignore[arg-type]
        projection = []
        for axis in tensor.projection:
            terms = []
            for d, c in axis.terms:
                if c == 1:
                    terms.append([names[d]])
                else:
                    coef = f"{names[d]}{c}"
                    coefficients[coef] = c
                    terms.append([names[d], coef])
            projection.append(terms)
        spaces.append(
            {"name": _SPACES[role], "projection": projection, "read_write": role == "output"}
        )
    instance: dict[str, int] = {names[d]: e for d, e in nest.dims}
    instance.update(coefficients)
    return {
        "problem": {
            "version": VERSION,
            "shape": {
                "name": nest.op or "joule_layer",
                "dimensions": [names[d] for d, _ in nest.dims],
                "coefficients": [{"name": k, "default": v} for k, v in coefficients.items()],
                "data_spaces": spaces,
            },
            "instance": instance,
        }
    }


def _containers(target: Target) -> dict[int, list[tuple[str, Axis, int]]]:
    """Per level with a fan-out below it, its containers: (name, axis, width), X first."""
    fanouts = {i: target.fanout(i) for i in range(len(target.levels))}
    fanouts = {i: xy for i, xy in fanouts.items() if xy != (1, 1)}
    out: dict[int, list[tuple[str, Axis, int]]] = {}
    for i, (x, y) in fanouts.items():
        inner = target.levels[i + 1].name
        names = ("PE_column", "PE") if len(fanouts) == 1 else (f"{inner}_column", f"{inner}_row")
        out[i] = [(n, a, w) for n, a, w in zip(names, ("X", "Y"), (x, y), strict=True) if w > 1]
    return out


def _spaces(lvl: StorageLevel) -> tuple[list[str], list[str]]:
    """(kept, bypassed) data spaces of a level, in the problem's order."""
    keep = [_SPACES[r] for r in ("weight", "input", "output") if r in lvl.keeps]
    bypass = [_SPACES[r] for r in ("weight", "input", "output") if r not in lvl.keeps]
    return keep, bypass


def _attributes(lvl: StorageLevel, target: Target) -> dict[str, Any]:
    bits = lvl.word_bits or target.word_bits
    attributes: dict[str, Any] = {"datawidth": bits, "width": bits}
    if lvl.capacity_words is not None:
        attributes["depth"] = lvl.capacity_words
    elif lvl.capacity_per_tensor:
        attributes["depth"] = sum(words for _role, words in lvl.capacity_per_tensor)
    if lvl.bandwidth_words_per_cycle is not None:
        attributes["read_bandwidth"] = lvl.bandwidth_words_per_cycle
        attributes["write_bandwidth"] = lvl.bandwidth_words_per_cycle
    return attributes


def _ert_tables(target: Target) -> list[dict[str, Any]]:
    """Per-action energies (pJ) of every level and the MAC, named as Accelergy names them."""
    tables = [
        {
            "name": f"system.{lvl.name}[1..{lvl.instances}]",
            "actions": [
                {"name": "read", "energy": lvl.read_pj},
                {"name": "write", "energy": lvl.write_pj},
                {"name": "update", "energy": lvl.update_pj},
            ],
        }
        for lvl in target.levels
    ]
    tables.append(
        {
            "name": f"system.mac[1..{target.levels[-1].instances}]",
            "actions": [{"name": "compute", "energy": target.mac_energy_pj}],
        }
    )
    return tables


def ert_yaml(target: Target) -> dict[str, Any]:
    """``ERT.yaml`` for ``timeloop-model``: the target's energies instead of Accelergy's."""
    return {"ERT": {"version": VERSION, "tables": _ert_tables(target)}}


def arch_yaml(target: Target) -> dict[str, Any]:
    """The v0.4 architecture, with the ERT (every action with ``arguments``, as timeloopfe asks)."""
    fanout = _containers(target)
    nodes: list[Any] = [_Container(name="system")]
    for i, lvl in enumerate(target.levels):
        keep, bypass = _spaces(lvl)
        nodes.append(
            _Component(
                name=lvl.name,
                **{"class": "DRAM" if i == 0 else "storage"},
                attributes=_attributes(lvl, target),
                constraints={"dataspace": {"keep": keep, "bypass": bypass}},
            )
        )
        for name, axis, width in fanout.get(i, []):
            nodes.append(_Container(name=name, spatial={f"mesh{axis}": width}))
    nodes.append(
        _Component(name="mac", **{"class": "intmac"}, attributes={"datawidth": target.word_bits})
    )
    tables = [
        {**table, "actions": [{**a, "arguments": {}} for a in table["actions"]]}
        for table in _ert_tables(target)
    ]
    return {
        "architecture": {"version": VERSION, "nodes": nodes},
        "ERT": {"version": VERSION, "tables": tables},
        "variables": {"global_cycle_seconds": 1.0 / target.clock_hz},
    }


# A Joule level's loops in Timeloop's tiling levels, outermost first: its temporal loops,
# then the X container (PE_column), then the Y container (PE).
Slot = tuple[int, str]
_SLOT_ORDER = {"T": 0, "X": 1, "Y": 2}


def timeloop_ends(
    nest: LoopNest, mapping: Mapping, target: Target
) -> dict[Slot, dict[str, tuple[int, int]]]:
    """Per Timeloop tiling level (level index, ``T``/``X``/``Y``), the ``(end,
    residual_end)`` of every dim that Joule's factors do not divide exactly.

    Timeloop has one loop per dim per tiling level, so a level's loops of a dim
    merge into one; each loop runs ``residual_end`` times when every loop of the
    dim outside it is at its last iteration (nest-analysis.cpp,
    ``IsLastGlobalIteration_``), which is Joule's "points past the extent do not
    run" when the residual ends are the digits of ``extent - 1`` (parser.cpp's
    check, ``prod = prod*end + residual_end-1``). The outermost loop always runs
    its residual end, so it is written as its end: a merged outermost spatial
    loop with a residual would stop Timeloop's analysis. Raises MappingError when
    the merge would reorder a dim's loops (a level's Y loop outside its X loop):
    with residual tiles the order decides which points run.
    """
    out: dict[Slot, dict[str, tuple[int, int]]] = {}
    for dim, extent in nest.extents.items():
        seq: list[tuple[Slot, int]] = []
        for i, lvl in enumerate(mapping.levels):
            seq += [((i, "T"), lp.factor) for lp in lvl.temporal if lp.dim == dim]
            seq += [((i, lp.axis or "X"), lp.factor) for lp in lvl.spatial if lp.dim == dim]
        seq = [(slot, f) for slot, f in seq if f > 1]
        if math.prod(f for _, f in seq) == extent:
            continue  # perfect: written as before, no residual
        keys = [(i, _SLOT_ORDER[s]) for (i, s), _ in seq]
        for (a, b), ((i, _), _) in zip(itertools.pairwise(keys), seq[1:], strict=True):
            if b < a:
                level = target.levels[i].name
                raise MappingError(
                    f"Timeloop cannot express the imperfect factors of {dim} (extent {extent}): "
                    f"at level {level} a loop of {dim} on Y is outside one on X, but Timeloop "
                    f"puts the X fan-out outside the Y fan-out, and with a residual tile the "
                    f"order of {dim}'s loops decides which points run",
                    where=f"layer @{nest.name}, --emit timeloop",
                    hint=f"put the X loops of {dim} at {level} outside its Y loops, or give "
                    f"{dim} factors that divide {extent}",
                )
        merged: dict[Slot, int] = {}
        for slot, f in seq:
            merged[slot] = merged.get(slot, 1) * f
        ends = residual_ends(extent, list(merged.values()))
        for k, (slot, f) in enumerate(merged.items()):
            out.setdefault(slot, {})[dim] = (ends[k], ends[k]) if k == 0 else (f, ends[k])
    return out


def mapping_yaml(nest: LoopNest, mapping: Mapping, target: Target) -> dict[str, Any]:
    """The v0.4 mapping: per level its data spaces and temporal loops, then its containers'."""
    names = timeloop_names(nest)
    dims = [names[d] for d, _ in nest.dims]
    fanout = _containers(target)
    ends = timeloop_ends(nest, mapping, target)
    entries: list[dict[str, Any]] = []
    for i, (lvl, loops) in enumerate(zip(target.levels, mapping.levels, strict=True)):
        keep, bypass = _spaces(lvl)
        entries.append({"target": lvl.name, "type": "dataspace", "keep": keep, "bypass": bypass})
        factors, permutation = _loops(loops.temporal, names, dims, ends.get((i, "T")))
        entries.append(
            {"target": lvl.name, "type": "temporal", "factors": factors, "permutation": permutation}
        )
        for name, axis, _width in fanout.get(i, []):
            factors, permutation = _loops(
                _on(loops.spatial, axis), names, dims, ends.get((i, axis))
            )
            entries.append(
                {
                    "target": name,
                    "type": "spatial",
                    "factors": factors,
                    "permutation": permutation,
                    "split": len(dims) if axis == "X" else 0,
                }
            )
    return {"mapping": entries}


def model_yaml(nest: LoopNest, mapping: Mapping, target: Target) -> dict[str, Any]:
    """``timeloop-model.yaml``: what timeloopfe 0.4 dumps from the v0.4 files, for the C++ tools.

    The keys timeloop-model reads (architecture, problem, mapping) and the marker
    that makes timeloopfe's ``tl model`` pass the file on unprocessed.
    """
    names = timeloop_names(nest)
    dims = [names[d] for d, _ in nest.dims]
    fanout = _containers(target)
    ends = timeloop_ends(nest, mapping, target)
    local: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    mesh = {"X": 1, "Y": 1}
    for i, (lvl, loops) in enumerate(zip(target.levels, mapping.levels, strict=True)):
        attributes = {**_attributes(lvl, target), **_STORAGE_DEFAULTS}
        kind = "DRAM" if i == 0 else "storage"
        local.append(
            _flat_node(lvl.name, kind, attributes, mesh, ["leak", "read", "write", "update"])
        )
        keep, bypass = _spaces(lvl)
        bypass_entry = {"keep": keep, "bypass": bypass, "type": "bypass", "target": lvl.name}
        entries.append({k: v for k, v in bypass_entry.items() if v})
        entries.append(
            {
                "target": lvl.name,
                "type": "temporal",
                **_flat(loops.temporal, names, dims, ends.get((i, "T"))),
            }
        )
        for name, axis, width in fanout.get(i, []):
            dummy = f"inter_{name}_spatial"
            attributes = {"width": 1, "depth": 1, "datawidth": 1, "technology": -1}
            local.append(_flat_node(dummy, "dummy_storage", attributes | _STORAGE_DEFAULTS, mesh))
            split = len(dims) if axis == "X" else 0
            spatial = _flat(_on(loops.spatial, axis), names, dims, ends.get((i, axis)))
            entries += [
                {"type": "spatial", "target": dummy, **spatial, "split": split},
                {**_flat((), names, dims), "type": "temporal", "target": dummy},
                {"bypass": list(_SPACES.values()), "type": "bypass", "target": dummy},
            ]
            mesh[axis] *= width
    mac = {"datawidth": target.word_bits, "has_power_gating": False}
    local.append(_flat_node("mac", "intmac", mac, mesh, ["compute"]))
    problem = problem_yaml(nest)["problem"]
    top = {
        "global_cycle_seconds": 1.0 / target.clock_hz,
        "version": str(VERSION),
        "has_power_gating": False,
        "power_gated_at": None,
    }
    return {
        "dumped_by_timeloop_front_end": True,
        "architecture": {
            "version": str(VERSION),
            "subtree": [{"name": "system_top_level", "attributes": top, "local": local}],
        },
        "problem": {
            **problem,
            "version": str(VERSION),
            "instance": {**problem["instance"], "densities": {}},
        },
        "mapping": entries,
    }


def _flat_node(
    name: str,
    kind: str,
    attributes: dict[str, Any],
    mesh: dict[str, int],
    actions: list[str] | None = None,
) -> dict[str, Any]:
    """A processed-format node: ``NAME[1..instances]``, its mesh, the actions Accelergy prices."""
    attributes = {**attributes, "meshX": mesh["X"], "meshY": mesh["Y"], "power_gated_at": None}
    node = {"name": f"{name}[1..{mesh['X'] * mesh['Y']}]", "class": kind, "attributes": attributes}
    if actions:
        node["required_actions"] = actions
    return {**node, "enabled": True}


def _on(loops: tuple[Loop, ...], axis: Axis) -> tuple[Loop, ...]:
    return tuple(lp for lp in loops if lp.axis == axis)


def _loops(
    loops: tuple[Loop, ...],
    names: dict[str, str],
    dims: list[str],
    ends: dict[str, tuple[int, int]] | None = None,
) -> tuple[list[str], list[str]]:
    """``factors`` and ``permutation`` (innermost first, every dim) of outermost-first loops.

    ``ends``: Joule dim -> (end, residual end) where the dim is imperfect; a
    residual end below the end is written ``M=4,1`` (parser.cpp's factor regex).
    """
    factors = {d: 1 for d in dims}
    residual: dict[str, int] = {}
    inner_first: list[str] = []
    for lp in reversed(loops):
        factors[names[lp.dim]] *= lp.factor
        if names[lp.dim] not in inner_first:
            inner_first.append(names[lp.dim])
    for dim, (end, res) in (ends or {}).items():
        factors[names[dim]] = end
        if res != end:
            residual[names[dim]] = res
    permutation = inner_first + [d for d in dims if d not in inner_first]
    text = [f"{d}={factors[d]}" + (f",{residual[d]}" if d in residual else "") for d in permutation]
    return text, permutation


def _flat(
    loops: tuple[Loop, ...],
    names: dict[str, str],
    dims: list[str],
    ends: dict[str, tuple[int, int]] | None = None,
) -> dict[str, str]:
    """``_loops`` as the processed format writes them: ``Q=5,N=1,...`` and ``QN...``
    (a residual reads unambiguously: ``M=4,1,N=1``, as a dim name starts with a letter)."""
    factors, permutation = _loops(loops, names, dims, ends)
    return {"factors": ",".join(factors), "permutation": "".join(permutation)}


def layer_dir_name(name: str) -> str:
    """A directory name for a layer (ONNX names hold slashes)."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "layer"


def dump(data: dict[str, Any], what: str, nest: LoopNest | None = None) -> str:
    """v0.4 YAML with a header naming the dims (Timeloop=Joule) when ``nest`` is given."""
    names = timeloop_names(nest) if nest is not None else {}
    dims = ", ".join(f"{t}={j}" for j, t in names.items()) or "-"
    head = _HEADER.format(what=what, dims=dims)
    return head + yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None)


def dump_flat(data: dict[str, Any], what: str) -> str:
    """Processed-format YAML, block style as timeloopfe writes it."""
    head = _FLAT_HEADER.format(what=what)
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def emit_timeloop(schedule: Schedule, out_dir: str | Path, target: Target) -> list[Path]:
    """DIR/timeloop/<layer>/ with both forms and joule-dims.yaml for every layer; the dirs.

    Every layer's files are made before any is written: a mapping Timeloop cannot
    express (``timeloop_ends``) leaves no partial export behind."""
    root = Path(out_dir) / "timeloop"
    arch = dump(arch_yaml(target), f"architecture of target {target.name}")
    ert = dump_flat(ert_yaml(target), f"energies of target {target.name}")
    layers: list[tuple[Path, dict[str, str]]] = []
    used: set[str] = set()
    for layer in schedule.layers:
        nest, name = layer.nest, layer_dir_name(layer.nest.name)
        while name in used:
            name += "_"
        used.add(name)
        files = {
            "problem.yaml": dump(problem_yaml(nest), f"layer {nest.name}", nest),
            "arch.yaml": arch,
            "mapping.yaml": dump(
                mapping_yaml(nest, layer.mapping, target), f"mapping of {nest.name}", nest
            ),
            DIMS_FILE: _DIMS_HEADER + yaml.safe_dump(dims_yaml(nest), sort_keys=False),
            "timeloop-model.yaml": dump_flat(
                model_yaml(nest, layer.mapping, target), f"{nest.name} on {target.name}"
            ),
            "ERT.yaml": ert,
        }
        layers.append((root / name, files))
    for directory, files in layers:
        directory.mkdir(parents=True, exist_ok=True)
        for file, text in files.items():
            write_atomic(directory / file, text)
    return [directory for directory, _ in layers]
