"""``joule evaluate``: score one mapping of one layer on a target with the cost model.

The layer comes from a model (``MODEL --layer NAME``), a one-line spec
(``--dims "conv:N=1,K=64,C=3,P=56,Q=56,R=3,S=3,stride=1"``) or a Timeloop
problem file; the mapping from Joule's JSON (``--mapping``) or Timeloop's
``map.yaml`` / ``map.txt`` (``--timeloop-mapping``). The numbers printed are
the model's, per level and tensor, so that a mapping from anywhere (a mapper,
Timeloop, a hand) can be checked against the same accounting.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from joule.errors import IRParseError, MappingError, ModelError

if TYPE_CHECKING:
    from joule.cost import CostResult
    from joule.ir.loopnest import LoopNest
    from joule.mapping import Mapping
    from joule.targets.spec import Target

_CONV_KEYS = {"N", "K", "C", "P", "Q", "R", "S", "G", "stride", "dilation", "pad", "groups"}
_MATMUL_KEYS = {"M", "N", "K", "B"}
_MAPPING_HINT = (
    'write {"levels": [{"level": NAME, "temporal": [[DIM, FACTOR], ...]}, ...]}, '
    "or pass a layer record of schedule.json"
)
_SPEC_HINT = (
    'write e.g. "conv:N=1,K=64,C=3,P=56,Q=56,R=3,S=3,stride=1" '
    '(also dilation=, pad=, G= for groups) or "matmul:M=128,N=64,K=256" (B=batch)'
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", nargs="?", metavar="MODEL", help="an .onnx file or bundled model (with --layer)"
    )
    parser.add_argument("--layer", metavar="NAME", help="the loop nest of MODEL to score")
    parser.add_argument("--dims", metavar="SPEC", help='a layer spec, e.g. "conv:K=64,C=3,..."')
    parser.add_argument(
        "--timeloop-problem", metavar="P.yaml", help="a Timeloop v0.4 problem (problem: key)"
    )
    parser.add_argument(
        "--target", required=True, metavar="T", help="bundled target name or YAML file"
    )
    parser.add_argument("--mapping", metavar="M.json", help="a Joule mapping (JSON)")
    parser.add_argument(
        "--timeloop-mapping", metavar="M.yaml|M.map.txt", help="a mapping as Timeloop writes it"
    )
    parser.add_argument("--json", action="store_true", help="print CostResult.to_dict() as JSON")


def run(args: argparse.Namespace) -> int:
    from joule.cost import evaluate
    from joule.targets.loader import load_target

    target = load_target(args.target)
    nest = _layer(args)
    mapping = _mapping(args, target, nest)
    result = evaluate(nest, target, mapping)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_result(result, nest, target, mapping))
    return 0


def _layer(args: argparse.Namespace) -> LoopNest:
    sources = [x for x in (args.model, args.dims, args.timeloop_problem) if x]
    if len(sources) != 1:
        raise IRParseError(
            "give exactly one layer: MODEL --layer NAME, --dims SPEC or --timeloop-problem P.yaml",
            where="joule evaluate arguments",
            hint=_SPEC_HINT,
        )
    if args.dims:
        return parse_dims_spec(args.dims)
    if args.timeloop_problem:
        from joule.timeloop import load_problem

        return load_problem(args.timeloop_problem)
    if not args.layer:
        raise ModelError(
            f"which layer of {args.model}?",
            where="joule evaluate MODEL without --layer",
            hint="add --layer NAME (the names `joule lower MODEL` prints)",
        )
    from joule.lower import lower_model

    network = lower_model(args.model)
    try:
        return network.loopnest(args.layer)
    except KeyError:
        names = [n.name for n in network.loopnests]
        raise ModelError(
            f"model {network.model} has no loop nest {args.layer!r}",
            where=f"--layer {args.layer}",
            hint=f"choose one of: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}",
        ) from None


def parse_dims_spec(spec: str) -> LoopNest:
    """``conv:N=1,K=64,...`` or ``matmul:M=..,N=..,K=..`` as a LoopNest."""
    from joule.ir.builders import conv2d, matmul

    kind, sep, body = spec.partition(":")
    kind = kind.strip().lower()
    values: dict[str, int] = {}
    for item in body.split(",") if sep else []:
        key, eq, value = item.partition("=")
        key = key.strip()
        try:
            values[key] = int(value)
        except ValueError:
            raise IRParseError(
                f"cannot read {item.strip()!r} in --dims", where=f"--dims {spec}", hint=_SPEC_HINT
            ) from None
        if not eq or values[key] < (0 if key == "pad" else 1):
            raise IRParseError(
                f"bad value in {item.strip()!r} of --dims (sizes are >= 1, pad >= 0)",
                where=f"--dims {spec}",
                hint=_SPEC_HINT,
            )
    if kind in ("conv", "conv2d"):
        unknown = set(values) - _CONV_KEYS
        missing = {"K", "C", "P", "Q", "R", "S"} - set(values)
    elif kind in ("matmul", "gemm"):
        unknown = set(values) - _MATMUL_KEYS
        missing = {"M", "N", "K"} - set(values)
    else:
        raise IRParseError(
            f"unknown layer kind {kind!r} in --dims", where=f"--dims {spec}", hint=_SPEC_HINT
        )
    if unknown or missing:
        problem = f"unknown {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
        raise IRParseError(f"--dims {kind}: {problem}", where=f"--dims {spec}", hint=_SPEC_HINT)
    if kind in ("matmul", "gemm"):
        batch = (values["B"],) if values.get("B", 1) > 1 else ()
        return matmul("matmul", m=values["M"], n=values["N"], k=values["K"], batch=batch)
    return conv2d(
        "conv",
        n=values.get("N", 1),
        k=values["K"],
        c=values["C"],
        p=values["P"],
        q=values["Q"],
        r=values["R"],
        s=values["S"],
        stride=values.get("stride", 1),
        dilation=values.get("dilation", 1),
        pad=values.get("pad", 0),
        groups=values.get("G", values.get("groups", 1)),
    )


def _mapping(args: argparse.Namespace, target: Target, nest: LoopNest) -> Mapping:
    from joule.mapping import Mapping

    if bool(args.mapping) == bool(args.timeloop_mapping):
        raise MappingError(
            "give exactly one mapping: --mapping M.json or --timeloop-mapping M.yaml|M.map.txt",
            where="joule evaluate arguments",
            hint="score a Joule mapping (schedule.json's or your own JSON) or a Timeloop one",
        )
    if args.timeloop_mapping:
        from joule.timeloop import load_mapping

        return load_mapping(args.timeloop_mapping, target, nest)
    path = Path(args.mapping)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise MappingError(
            f"cannot read mapping: {exc.strerror}",
            where=str(path),
            hint="give the path of a mapping JSON file (e.g. a layer of schedule.json)",
        ) from None
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for a binary file
        raise MappingError(
            f"mapping is not valid JSON: {exc}", where=str(path), hint=_MAPPING_HINT
        ) from None
    if isinstance(data, dict) and "mapping" in data and "levels" not in data:
        data = data["mapping"]  # a schedule.json layer record
    if not isinstance(data, dict):
        raise MappingError(
            "mapping JSON must be an object with 'levels'", where=str(path), hint=_MAPPING_HINT
        )
    return Mapping.from_dict(data, source=str(path))


def format_result(result: CostResult, nest: LoopNest, target: Target, mapping: Mapping) -> str:
    """The report: the mapped nest, per-level per-tensor counts and pJ, totals."""
    lines = [
        f"layer @{nest.name}: "
        + " ".join(f"{d}={e}" for d, e in nest.dims)
        + f"  ({result.macs:,} MACs) on {target.name}",
        "",
        mapping.loops_text(extents=nest.extents),
        "",
    ]
    header = f"{'level':<14}{'tensor':<8}{'reads':>14}{'fills':>14}{'updates':>14}{'pJ':>16}"
    lines += [header, "-" * len(header)]
    for lvl in target.levels:
        for role, counts in result.accesses.get(lvl.name, {}).items():
            pj = result.energy_breakdown_pj.get(lvl.name, {}).get(role, 0.0)
            lines.append(
                f"{lvl.name:<14}{role:<8}{counts.reads:>14,}{counts.fills:>14,}"
                f"{counts.updates:>14,}{pj:>16,.1f}"
            )
    lines.append(f"{'MAC':<22}{'':>42}{result.mac_energy_pj:>16,.1f}")
    lines.append("-" * len(header))
    per_mac = result.energy_pj / result.macs if result.macs else 0.0
    bound = result.lower_bound_pj
    lines += [
        f"energy       {result.energy_pj:,.1f} pJ  ({per_mac:.3f} pJ/MAC)",
        f"lower bound  {bound:,.1f} pJ  (energy is {result.energy_pj / bound:.2f}x the bound)"
        if bound
        else f"lower bound  {bound:,.1f} pJ",
        f"cycles       {result.cycles:,}  (compute {result.compute_cycles:,}; "
        f"bound by {result.bottleneck})",
        f"utilization  {100 * result.utilization:.2f} % of {result.pes} PEs",
    ]
    for level, roles in result.link_words.items():
        for role, words in roles.items():
            lines.append(f"links        {words:,} {role} words forwarded between PEs below {level}")
    return "\n".join(lines)
