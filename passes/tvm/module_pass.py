"""joule-schedule: a TVM module pass that applies Joule's mappings to the legalized PrimFuncs.

Precondition: a Relax IRModule after ``relax.transform.LegalizeOps`` and before
FuseOps/FuseTIR (every MAC block still has one loop per iter var). For each
PrimFunc with a MAC block (conv, grouped/depthwise conv, dense and batched
matmul, anything affine ``out += a * b``) it builds the loop nest, takes the
mapping given for it (by PrimFunc name or by call-site var name) or maps it for
the target, and applies the mapping with ``s_tir.Schedule`` (see
``joule.passes.tvm.apply_mapping``). The scheduled PrimFunc carries the attribute
``joule.mapping``: JSON readable by ``joule.mapping.Mapping.from_dict``,
plus ``target``, ``block`` and ``dims``.

Call sites sharing a PrimFunc have identical shapes, so a computed mapping
serves all of them; when given mappings differ between sites, each group of
sites with the same mapping gets its own copy of the PrimFunc.
"""

from __future__ import annotations

import json
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path

import tvm
from joule.defaults import DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT_S
from joule.ir.loopnest import LoopNest
from joule.mapping import Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.tvm import ffi_errors  # noqa: F401  (Joule errors keep their class through TVM)
from joule.passes.tvm.apply_mapping import apply_mapping
from joule.passes.tvm.call_sites import call_sites, split_sites
from joule.passes.tvm.primfunc_nests import primfunc_loopnests
from joule.targets.spec import Target
from tvm import tirx

MAPPING_ATTR = "joule.mapping"


@tvm.transform.module_pass(opt_level=0, name="joule-schedule")
@dataclass
class JouleSchedule:
    """Options are fields: ``JouleSchedule("eyeriss", mapper="random", samples=200)``.

    ``mappings`` maps a PrimFunc name (``conv2d1``) or a call-site var name of a
    Relax function to a Mapping (or its dict); other MAC PrimFuncs are mapped
    with ``mapper`` (``cpsat``, ``random``, ``exhaustive``) under ``dataflow``.
    """

    target: str | Path | Target = "eyeriss"
    mappings: MappingABC[str, Mapping | dict] = field(default_factory=dict)
    mapper: str = "cpsat"
    dataflow: str = "free"
    objective: str = "energy"
    time_limit: float = DEFAULT_TIME_LIMIT_S
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    factors: str = "perfect"  # "imperfect": residual tiles (non-dividing splits)

    def transform_module(self, mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        from joule.targets import load_target

        mod = mod.clone()  # IRModule assignment mutates in place; leave the input alone
        target = self.target if isinstance(self.target, Target) else load_target(self.target)
        given = {k: _as_mapping(v, k) for k, v in self.mappings.items()}
        solved: dict[str, Mapping] = {}  # nest signature -> mapping: one solve per shape
        sites = call_sites(mod)
        funcs = [
            (gv.name_hint, f)
            for gv, f in mod.functions_items()
            if isinstance(f, tirx.PrimFunc) and MAPPING_ATTR not in (f.attrs or {})
        ]
        for name, func in funcs:
            nests = primfunc_loopnests(name, func)
            if not nests:
                continue
            groups: dict[str, tuple[list[str], list[Mapping]]] = {}
            for site in sites.get(name, []) or [name]:
                chosen = [
                    given.get(site if k == 0 else f"{site}#{k}")
                    or given.get(nest.name)
                    or self._solve(nest, target, solved)
                    for k, nest in enumerate(nests)
                ]
                key = json.dumps([m.to_dict() for m in chosen])
                groups.setdefault(key, ([], chosen))[0].append(site)
            ordered = list(groups.values())
            if len(ordered) > 1:
                mod, names = split_sites(mod, name, [g[0] for g in ordered])
            else:
                names = [name]
            for copy_name, (_sites, chosen) in zip(names, ordered, strict=True):
                gv = mod.get_global_var(copy_name)
                mod[gv] = _scheduled(mod[gv], nests, chosen, target.name)
        return mod

    def _solve(self, nest: LoopNest, target: Target, solved: dict[str, Mapping]) -> Mapping:
        from joule.passes.dataflow import space_constraints
        from joule.passes.mapper.map_layer import map_layer
        from joule.passes.mapper.outcome import SearchOptions

        canon = drop_unit_dims(nest)
        key = canon.signature()
        if key not in solved:
            options = SearchOptions(
                objective=self.objective,
                time_limit_s=self.time_limit,
                samples=self.samples,
                seed=self.seed,
                factors=self.factors,
            )
            constraints = space_constraints(canon, target, self.dataflow)
            result = map_layer(canon, target, constraints, mapper=self.mapper, options=options)
            solved[key] = result.mapping
        return solved[key]


def _scheduled(
    func: tirx.PrimFunc, nests: list[LoopNest], mappings: list[Mapping], target: str
) -> tirx.PrimFunc:
    records = []
    for nest, mapping in zip(nests, mappings, strict=True):
        func = apply_mapping(func, nest, mapping)
        records.append(
            {
                "target": target,
                "block": dict(nest.attrs).get("tir.block", ""),
                "dims": dict(nest.dims),
                **mapping.to_dict(),
            }
        )
    attr = dict(records[0])
    if len(records) > 1:
        attr["more_blocks"] = records[1:]
    return func.with_attr(MAPPING_ATTR, json.dumps(attr))


def _as_mapping(value: Mapping | dict, key: str) -> Mapping:
    if isinstance(value, Mapping):
        return value
    return Mapping.from_dict(value, source=f"mapping for {key}")


def mapping_of(func: tirx.PrimFunc) -> Mapping | None:
    """The mapping a scheduled PrimFunc carries (None when it was not mapped)."""
    text = (func.attrs or {}).get(MAPPING_ATTR)
    return None if text is None else Mapping.from_dict(json.loads(str(text)))
