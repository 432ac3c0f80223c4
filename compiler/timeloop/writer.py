"""``--emit timeloop``: each layer's problem, architecture and mapping in Timeloop v0.4 YAML.

So that ``timeloop-model problem.yaml arch.yaml mapping.yaml`` can score Joule's
mapping with the tool everyone trusts. Format: Timeloop v0.4 (timeloopfe,
``version: 0.4``, ``!Container`` / ``!Component`` architecture nodes), as in
the Timeloop/Accelergy exercises. No TVM here.

Conventions (those of ``compiler/timeloop``, which reads the files back):

* dims are single letters (Timeloop's factor parser reads ``[A-Za-z]+``): a
  convolution's K is Timeloop's M; a multi-letter dim (B0, K1) gets a free
  letter. Each file records the renaming as ``joule_dims: {timeloop: joule}``;
* a coefficient c != 1 of dim D in a projection is a shape coefficient
  ``D<c>`` (e.g. ``P2`` for stride 2); offsets (padding) are dropped, as
  Timeloop has no padding;
* levels are the target's, outermost first; a fan-out below a level becomes two
  containers, ``PE_column`` (meshX, ``split`` = all dims) and ``PE`` (meshY,
  ``split: 0``), as in eyeriss_like; permutations list loops innermost first
  and name every dim (factor-1 dims outermost);
* energies: an ``ERT`` in arch.yaml gives every level's per-word read, write
  and update energy and the MAC's (pJ per action; each component's ``width``
  equals its ``datawidth``, so one action moves one word) — timeloop-model uses
  a given ERT instead of calling Accelergy.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

import yaml
from joule.ir.loopnest import LoopNest
from joule.mapping import Mapping
from joule.report.files import write_atomic
from joule.schedule import Schedule
from joule.targets.spec import Target

VERSION = 0.4
_SPACES = {"weight": "Weights", "input": "Inputs", "output": "Outputs"}
_HEADER = "# Timeloop v0.4 format, written by Joule ({what}). Dims (Timeloop=Joule): {dims}.\n"


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
        space: dict[str, Any] = {"name": _SPACES[role], "projection": projection}
        if role == "output":
            space["read_write"] = True
        spaces.append(space)
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
        },
        "joule_dims": {t: j for j, t in names.items()},
    }


def _fanouts(target: Target) -> dict[int, tuple[int, int]]:
    return {i: target.fanout(i) for i in range(len(target.levels)) if target.fanout(i) != (1, 1)}


def arch_yaml(target: Target) -> dict[str, Any]:
    fanouts = _fanouts(target)
    nodes: list[Any] = [_Container(name="system")]
    ert = []
    instances_above = 1
    for i, lvl in enumerate(target.levels):
        bits = lvl.word_bits or target.word_bits
        attributes: dict[str, Any] = {"datawidth": bits, "width": bits}
        if lvl.capacity_words is not None:
            attributes["depth"] = lvl.capacity_words
        elif lvl.capacity_per_tensor:
            attributes["depth"] = sum(words for _role, words in lvl.capacity_per_tensor)
        if lvl.bandwidth_words_per_cycle is not None:
            attributes["read_bandwidth"] = lvl.bandwidth_words_per_cycle
            attributes["write_bandwidth"] = lvl.bandwidth_words_per_cycle
        keep = [_SPACES[r] for r in ("weight", "input", "output") if r in lvl.keeps]
        bypass = [_SPACES[r] for r in ("weight", "input", "output") if r not in lvl.keeps]
        node = _Component(
            name=lvl.name,
            **{"class": "DRAM" if i == 0 else "storage"},
            attributes=attributes,
            constraints={"dataspace": {"keep": keep, "bypass": bypass}},
        )
        nodes.append(node)
        ert.append(
            {
                "name": f"system.{lvl.name}[1..{lvl.instances}]",
                "actions": [
                    {"name": "read", "energy": lvl.read_pj},
                    {"name": "write", "energy": lvl.write_pj},
                    {"name": "update", "energy": lvl.update_pj},
                ],
            }
        )
        if len(fanouts) > 1 and lvl.instances > 1:
            node["spatial"] = {"meshX": lvl.mesh_x, "meshY": lvl.mesh_y}
        if i in fanouts and len(fanouts) == 1:
            x, y = fanouts[i]
            nodes.append(_Container(name="PE_column", spatial={"meshX": x}))
            nodes.append(_Container(name="PE", spatial={"meshY": y}))
        instances_above = lvl.instances
    nodes.append(
        _Component(
            name="mac",
            **{"class": "intmac"},
            attributes={"datawidth": target.word_bits},
        )
    )
    ert.append(
        {
            "name": f"system.mac[1..{instances_above}]",
            "actions": [{"name": "compute", "energy": target.mac_energy_pj}],
        }
    )
    return {
        "architecture": {"version": VERSION, "nodes": nodes},
        "ERT": {"version": VERSION, "tables": ert},
        "variables": {"global_cycle_seconds": 1.0 / target.clock_hz},
    }


def mapping_yaml(nest: LoopNest, mapping: Mapping, target: Target) -> dict[str, Any]:
    names = timeloop_names(nest)
    dims = [names[d] for d, _ in nest.dims]
    fanouts = _fanouts(target)
    entries: list[dict[str, Any]] = []
    for i, (lvl, loops) in enumerate(zip(target.levels, mapping.levels, strict=True)):
        keep = [_SPACES[r] for r in ("weight", "input", "output") if r in lvl.keeps]
        bypass = [_SPACES[r] for r in ("weight", "input", "output") if r not in lvl.keeps]
        entries.append({"target": lvl.name, "type": "datatype", "keep": keep, "bypass": bypass})
        entries.append(
            {"target": lvl.name, "type": "temporal", **_loops(loops.temporal, names, dims)}
        )
        if i not in fanouts:
            continue
        xs = [lp for lp in loops.spatial if lp.axis == "X"]
        ys = [lp for lp in loops.spatial if lp.axis == "Y"]
        if len(fanouts) == 1:
            x_loops, y_loops = _loops(xs, names, dims), _loops(ys, names, dims)
            entries.append(
                {"target": "PE_column", "type": "spatial", **x_loops, "split": len(dims)}
            )
            entries.append({"target": "PE", "type": "spatial", **y_loops, "split": 0})
        else:
            entries.append(
                {"target": lvl.name, "type": "spatial", **_split_loops(xs, ys, names, dims)}
            )
    return {"mapping": entries, "joule_dims": {t: j for j, t in names.items()}}


def _loops(loops: tuple, names: dict[str, str], dims: list[str]) -> dict[str, Any]:
    """``factors`` and ``permutation`` (innermost first, every dim) of outermost-first loops."""
    factors = {d: 1 for d in dims}
    inner_first: list[str] = []
    for lp in reversed(loops):
        factors[names[lp.dim]] *= lp.factor
        if names[lp.dim] not in inner_first:
            inner_first.append(names[lp.dim])
    permutation = inner_first + [d for d in dims if d not in inner_first]
    return {
        "factors": " ".join(f"{d}={factors[d]}" for d in permutation),
        "permutation": permutation,
    }


def _split_loops(xs: list, ys: list, names: dict[str, str], dims: list[str]) -> dict[str, Any]:
    """One spatial entry: X dims first in the permutation, ``split`` = how many.

    A dim on both axes cannot be written this way; its factors are merged on X.
    """
    x = _loops(xs, names, dims)
    x_dims = list(dict.fromkeys(names[lp.dim] for lp in reversed(xs)))
    y = _loops(ys, names, dims)
    factors = dict(pair.split("=") for pair in x["factors"].split())
    for pair in y["factors"].split():
        d, f = pair.split("=")
        factors[d] = str(int(factors[d]) * int(f))
    permutation = x_dims + [d for d in y["permutation"] if d not in x_dims]
    return {
        "factors": " ".join(f"{d}={factors[d]}" for d in permutation),
        "permutation": permutation,
        "split": len(x_dims),
    }


def layer_dir_name(name: str) -> str:
    """A directory name for a layer (ONNX names hold slashes)."""
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "layer"


def dump(data: dict[str, Any], what: str) -> str:
    dims = ", ".join(f"{t}={j}" for t, j in data.get("joule_dims", {}).items()) or "-"
    head = _HEADER.format(what=what, dims=dims)
    return head + yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=None)


def emit_timeloop(schedule: Schedule, out_dir: str | Path, target: Target) -> list[Path]:
    """DIR/timeloop/<layer>/{problem,arch,mapping}.yaml for every layer; the layer dirs."""
    root = Path(out_dir) / "timeloop"
    arch = dump(arch_yaml(target), f"architecture of target {target.name}")
    dirs = []
    used: set[str] = set()
    for layer in schedule.layers:
        name = layer_dir_name(layer.nest.name)
        while name in used:
            name += "_"
        used.add(name)
        directory = root / name
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(
            directory / "problem.yaml", dump(problem_yaml(layer.nest), f"layer {layer.nest.name}")
        )
        write_atomic(directory / "arch.yaml", arch)
        text = dump(
            mapping_yaml(layer.nest, layer.mapping, target), f"mapping of {layer.nest.name}"
        )
        write_atomic(directory / "mapping.yaml", text)
        dirs.append(directory)
    return dirs
