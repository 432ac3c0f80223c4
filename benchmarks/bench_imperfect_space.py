"""How much larger the imperfect space is than the perfect one, where the proof enumerates.

The proof search (``passes/mapper/proof/prove.py``) enumerates, per spatial
unrolling, every dim's temporal tuples. This counts, for real layers on
``eyeriss``, the unrollings of each space and, at the perfect optimum's
unrolling, each dim's temporal tuples with perfect and with imperfect factors:
the factor by which the enumeration would grow over residual tiles.
Second table: for every distinct layer of the five shared networks, the points
an enumeration pruned by unrolling bounds must still cover -- those of every
unrolling whose bound is below the best energy known (perfect: the proven
optimum; imperfect: the residual search's best, both read from
``imperfect_networks.json``, written by ``bench_imperfect.py networks``).
Writes ``--out``/imperfect_space.md.

    .venv/bin/python benchmarks/bench_imperfect_space.py
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import Counter
from pathlib import Path

from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import LoopNest
from joule.lower import lower_model
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.bounds.spatial import _per_unrolling, spatial_slots
from joule.passes.mapper.cpsat.solve import CPSAT_SHARE
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.mapspace.space import MapSpace, canonical_tuple
from joule.passes.mapper.outcome import SearchOptions
from joule.passes.mapper.proof.prove import budget_for
from joule.passes.mapper.search.local_search import decode
from joule.report.files import write_atomic
from joule.targets import load_target

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"
MAX_TUPLES = 2_000_000  # imperfect tuples of one dim counted (none of the 87 layers has more)
LAYERS = [
    conv2d("resnet 3x3 64->64 56x56", k=64, c=64, p=56, q=56, r=3, s=3),
    conv2d("resnet 1x1 64->256 56x56", k=256, c=64, p=56, q=56, r=1, s=1),
    conv2d("resnet 3x3 512->512 7x7", k=512, c=512, p=7, q=7, r=3, s=3),
    matmul("gemm 64x1000x512", m=64, n=1000, k=512),
]


def imperfect_temporal(space: MapSpace, dim: str, spatial: dict[int, int]) -> int:
    """Imperfect tuples of ``dim`` whose spatial slots hold ``spatial``: inner temporal
    factors with a product below the extent, the outermost running the ceiling."""
    slots, extent = space.slots[dim], space.extents[dim]
    inner = [k for k, s in enumerate(slots) if s.axis is None and k > 0]
    found = set()

    def walk(i: int, chosen: dict[int, int], product: int) -> None:
        if i == len(inner):
            raw = [1] * len(slots)
            for k, f in (spatial | chosen).items():
                raw[k] = f
            t = canonical_tuple(extent, (raw[0] if 0 in spatial else 1, *raw[1:]))
            if all(t[k] == f for k, f in spatial.items()) and t[0] <= space.slot_limit(slots[0]):
                found.add(t)
            return
        for f in range(1, extent + 1):
            if f > 1 and product * f > extent:
                break
            walk(i + 1, chosen | {inner[i]: f}, product * f)

    walk(0, {}, math.prod(spatial.values()))
    return len(found)


def row(nest: LoopNest) -> dict:
    target = load_target("eyeriss")
    nest = drop_unit_dims(nest)
    constraints = space_constraints(nest, target)
    space = MapSpace(nest, target, constraints)
    best = map_layer(nest, target, constraints, options=SearchOptions(time_limit_s=2))
    factors, _ = decode(space, best.mapping)
    dims = {}
    for d in space.dims:
        spatial = {k: factors[d][k] for k, s in enumerate(space.slots[d]) if s.axis is not None}
        perfect = sum(all(t[k] == f for k, f in spatial.items()) for t in space.factor_tuples[d])
        dims[d] = (perfect, imperfect_temporal(space, d, spatial))
    unrollings = [len(_per_unrolling(space, imperfect)[1]) for imperfect in (False, True)]
    return {"layer": nest.name, "dims": dims, "unrollings": unrollings}


def markdown(rows: list[dict]) -> str:
    lines = [
        "# The imperfect space against the perfect one (eyeriss)",
        "",
        "Per dim: temporal tuples at the perfect optimum's unrolling, perfect → imperfect.",
        "",
        "| layer | per dim | points per unrolling | unrollings | whole space |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        per_dim = ", ".join(f"{d} {p} → {i}" for d, (p, i) in r["dims"].items())
        p = math.prod(p for p, _ in r["dims"].values())
        i = math.prod(i for _, i in r["dims"].values())
        up, ui = r["unrollings"]
        lines.append(
            f"| {r['layer']} | {per_dim} | {p:,} → {i:,} ({i / p:,.0f}×) | {up:,} → {ui:,} "
            f"| {i * ui / (p * up):,.0f}× |"
        )
    return "\n".join(lines) + "\n"


def to_cover(space: MapSpace, best_pj: float, imperfect: bool) -> tuple[int, int, int]:
    """Unrollings, those whose bound is below ``best_pj``, and the points in them."""
    const, parts = _per_unrolling(space, imperfect)
    spatial = spatial_slots(space)
    counts = {}
    for d in space.dims:
        at = [k for k, s in enumerate(space.slots[d]) if s.axis is not None]
        tuples = space.imperfect_tuples(d, MAX_TUPLES) if imperfect else space.factor_tuples[d]
        counts[d] = Counter(tuple(t[k] for k in at) for t in tuples)
    orders = math.prod(len(o) for o in space.order_candidates)
    open_ = points = 0
    for onchip, offchip, factors in parts:
        if const + onchip + offchip >= best_pj:
            continue
        open_ += 1
        at = dict(zip(spatial, factors, strict=True))
        points += orders * math.prod(
            counts[d][tuple(at[s] for s in space.slots[d] if s.axis is not None)]
            for d in space.dims
        )
    return len(parts), open_, points


def proof_rows(networks: Path) -> list[dict]:
    target = load_target("eyeriss")
    rows = []
    for key, study in json.loads(networks.read_text()).items():
        name = key.split("/")[0]
        nests = {n.name: n for n in lower_model(SHARED / f"{name}.onnx").loopnests}
        for layer in study["layers"]:
            nest = drop_unit_dims(nests[layer["layer"]])
            space = MapSpace(nest, target, space_constraints(nest, target))
            rows.append(
                {
                    "network": name,
                    "layer": layer["layer"],
                    "perfect": to_cover(space, layer["perfect_energy_pj"], False),
                    "imperfect": to_cover(space, layer["imperfect_energy_pj"], True),
                }
            )
    return rows


def proof_markdown(rows: list[dict]) -> str:
    ratios = sorted(r["imperfect"][2] / r["perfect"][2] for r in rows if r["perfect"][2])
    imperfect = sorted(r["imperfect"][2] for r in rows)
    lines = [
        "",
        "## What a proof would have to enumerate (every distinct layer of the five networks)",
        "",
        "Unrollings whose bound is below the best energy known, and the points (tuples x "
        "orders) in them: the work left for the floors of an enumerating proof.",
        "",
        f"- imperfect points to cover: median {statistics.median(imperfect):.2g}, "
        f"min {imperfect[0]:.2g}, max {imperfect[-1]:.2g};",
        f"- imperfect over perfect: median {statistics.median(ratios):,.0f}×, "
        f"min {ratios[0]:,.0f}×, max {ratios[-1]:.2g}× (where the perfect space leaves "
        "any: on some layers its bounds alone prove the optimum);",
        f"- the proof's budget at the default 2 s: {budget_for(2 * (1 - CPSAT_SHARE)):,} "
        "work units (a point scored or floored under one loop order, a partial point built).",
        "",
        "| network | layer | perfect: open / unrollings, points | imperfect: open / unrollings,"
        " points | × |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        (pu, po, pp), (iu, io, ip) = r["perfect"], r["imperfect"]
        lines.append(
            f"| {r['network']} | {r['layer']} | {po} / {pu}, {pp:.2g} | {io} / {iu}, {ip:.2g} "
            f"| {f'{ip / pp:,.0f}' if pp else '—'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--networks", type=Path, default=RESULTS / "imperfect_networks.json")
    args = parser.parse_args()
    text = markdown([row(nest) for nest in LAYERS]) + proof_markdown(proof_rows(args.networks))
    write_atomic(args.out / "imperfect_space.md", text)
    print(text)


if __name__ == "__main__":
    main()
