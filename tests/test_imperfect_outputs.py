"""Imperfect factors in the outputs (issue 15): the tiling summary, schedule.json and the
reports, ``--emit timeloop`` with Timeloop's residual ends, ``--emit tvm`` with
non-dividing splits that still compute the right numbers."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from joule.cost import evaluate
from joule.errors import MappingError
from joule.ir.builders import matmul
from joule.ir.loopnest import LoopNest
from joule.mapping import LevelLoops, Loop, Mapping, residual_ends
from joule.report.write import write_outputs
from joule.schedule import LayerSchedule, Schedule
from joule.targets import load_target
from joule.targets.spec import Target
from joule.tiling import LoopTiling, summarize
from joule.timeloop import load_mapping
from joule.timeloop.writer import emit_timeloop

LEVELS = ("DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad")  # eyeriss
SOLVER = {"status": "GIVEN", "objective": 0.0, "bound": 0.0, "gap": 0.0, "time_s": 0.0}


def _eyeriss(**levels: tuple[tuple[Loop, ...], tuple[Loop, ...]]) -> Mapping:
    """A mapping of eyeriss from ``LEVEL=(temporal, spatial)``, other levels empty."""
    return Mapping(tuple(LevelLoops(n, *levels.get(n, ((), ()))) for n in LEVELS))


# K = 13 on the 4-wide Y fan-out below shared_glb: 4 temporal steps of 4 PEs, the last
# step on 1 PE. M = 2, N = 3 perfect at DRAM.
K13 = matmul("mm", m=2, n=3, k=13)
K13_MAP = _eyeriss(
    DRAM=((Loop("M", 2), Loop("N", 3), Loop("K", 4)), ()),
    shared_glb=((), (Loop("K", 4, "Y"),)),
)


def _schedule(nest: LoopNest, mapping: Mapping, target: Target) -> Schedule:
    layer = LayerSchedule(nest, mapping, evaluate(nest, target, mapping), dict(SOLVER), "free")
    return Schedule("m", target.name, "", "energy", "free", "given", [layer], [])


# --- the tiling summary -----------------------------------------------------------------


def test_summary_of_k13_on_a_4_wide_axis_by_hand() -> None:
    target = load_target("eyeriss")
    cost = evaluate(K13, target, K13_MAP)
    summary = summarize(K13, K13_MAP, cost)
    k = summary.dim("K")
    assert not k.perfect and not summary.perfect
    # 12 = 3*4 + 0: the outer loop's last run is all 4 of it (outermost), over tiles of 4
    # whose last is 13 - 12 = 1; the spatial loop's last run is 1 PE.
    assert k.loops == (
        LoopTiling("DRAM", None, 4, 4, 4, 1),
        LoopTiling("shared_glb", "Y", 4, 1, 1, 1),
    )
    assert summary.dim("M").perfect and summary.dim("N").perfect
    assert summary.dim("M").loops == (LoopTiling("DRAM", None, 2, 2, 1, 1),)
    # 2*3*4 = 24 compute cycles on 4 PEs claimed, 2*3*13 = 78 MACs: per (M, N) the last
    # K step leaves 3 PEs idle, 2*3*3 = 18 PE-cycles lost.
    assert (summary.compute_cycles, summary.pes_used, summary.pes) == (24, 4, 168)
    assert summary.macs == 78 and summary.lost_computes == 18
    assert summary.used_pe_utilization == pytest.approx(78 / 96)
    assert summary.array_utilization == pytest.approx(78 / (24 * 168))


def test_summary_residual_tile_of_a_spatial_loop_over_a_temporal_one() -> None:
    """K = 5 as 2 PEs (outer) x 3 temporal steps (inner): PE 1 gets the residual tile of 2,
    the temporal loop's last run is 2 steps; 3 cycles x 2 PEs - 5 MACs = 1 lost."""
    nest = matmul("k5", m=1, n=1, k=5)
    mapping = _eyeriss(shared_glb=((), (Loop("K", 2, "X"),)), psum_spad=((Loop("K", 3),), ()))
    summary = summarize(nest, mapping, evaluate(nest, load_target("eyeriss"), mapping))
    assert summary.dim("K").loops == (
        LoopTiling("shared_glb", "X", 2, 2, 3, 2),
        LoopTiling("psum_spad", None, 3, 2, 1, 1),
    )
    assert (summary.compute_cycles, summary.pes_used, summary.lost_computes) == (3, 2, 1)


def test_a_perfect_mapping_loses_nothing() -> None:
    nest = matmul("k12", m=2, n=3, k=12)
    mapping = _eyeriss(
        DRAM=((Loop("M", 2), Loop("N", 3), Loop("K", 3)), ()),
        shared_glb=((), (Loop("K", 4, "Y"),)),
    )
    summary = summarize(nest, mapping, evaluate(nest, load_target("eyeriss"), mapping))
    assert summary.perfect and summary.lost_computes == 0
    assert summary.used_pe_utilization == 1.0
    assert all(lp.residual == lp.factor for d in summary.dims for lp in d.loops)


@pytest.mark.parametrize(
    ("extent", "factors", "ends"),
    [(13, [4, 4], [4, 1]), (10, [2, 3, 2], [2, 2, 2]), (5, [2, 3], [2, 2]), (12, [3, 4], [3, 4])],
)
def test_residual_ends_meet_timeloops_check(
    extent: int, factors: list[int], ends: list[int]
) -> None:
    """Timeloop's parser (src/mapping/parser.cpp, the validity check after the factors are
    parsed) accepts a dim iff, outermost first, prod = prod*end + residual_end - 1 ends at
    extent - 1."""
    assert residual_ends(extent, factors) == ends
    assert _timeloop_extent(list(zip(factors, ends, strict=True))) == extent


# --- schedule.json and the reports ------------------------------------------------------


def test_schedule_json_and_reports_carry_the_tiling(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    write_outputs(_schedule(K13, K13_MAP, target), tmp_path)
    (layer,) = json.loads((tmp_path / "schedule.json").read_text())["layers"]
    tiling = layer["tiling"]
    assert tiling["perfect"] is False
    assert tiling["dims"]["K"] == {
        "extent": 13,
        "perfect": False,
        "loops": [
            {"level": "DRAM", "axis": None, "factor": 4, "residual": 4, "tile": 4,
             "residual_tile": 1},
            {"level": "shared_glb", "axis": "Y", "factor": 4, "residual": 1, "tile": 1,
             "residual_tile": 1},
        ],
    }  # fmt: skip
    assert tiling["dims"]["N"]["perfect"] is True
    assert (tiling["compute_cycles"], tiling["pes_used"], tiling["pes"]) == (24, 4, 168)
    assert tiling["lost_computes"] == 18
    assert tiling["used_pe_utilization"] == pytest.approx(78 / 96)
    assert tiling["array_utilization"] == pytest.approx(78 / (24 * 168))
    row = (
        "| mm | K=13: DRAM 4 (tile 4, last 1), shared_glb/Y 4 (last run 1) | 4 of 168 "
        "| 81.2 | 1.9 | 18 |"
    )
    markdown = (tmp_path / "report.md").read_text()
    assert "## Tiling and PE utilisation" in markdown and row in markdown
    html = (tmp_path / "report.html").read_text()
    assert "<h2>Tiling and PE utilisation</h2>" in html
    assert "<td>K=13: DRAM 4 (tile 4, last 1), shared_glb/Y 4 (last run 1)</td>" in html


def test_report_says_a_perfect_layer_is_perfect(tmp_path: Path) -> None:
    nest = matmul("p", m=2, n=3, k=12)
    mapping = _eyeriss(DRAM=((Loop("M", 2), Loop("N", 3), Loop("K", 12)), ()))
    write_outputs(_schedule(nest, mapping, load_target("eyeriss")), tmp_path)
    assert (
        "| p | none (perfect) | 1 of 168 | 100.0 | 0.6 | 0 |"
        in (tmp_path / "report.md").read_text()
    )


# --- --emit timeloop --------------------------------------------------------------------

# Timeloop's factor syntax, src/mapping/parser.cpp:590 (ParseUserFactors): a dim name, '='s,
# the end and an optional ',residual_end' (parser.cpp:628-635: absent means the end).
# Written again in Python to read Joule's files as that parser would.
_TL_FACTOR = re.compile(r"([A-Za-z]+)\s*=*\s*([0-9]+)(,([0-9]+))?")


def _timeloop_factors(text: str) -> dict[str, tuple[int, int]]:
    return {
        m.group(1): (int(m.group(2)), int(m.group(4) or m.group(2)))
        for m in _TL_FACTOR.finditer(text)
    }


def _timeloop_extent(loops: list[tuple[int, int]]) -> int:
    """parser.cpp:375-386, outermost loop first: prod = prod*end + residual_end - 1, plus 1."""
    prod = 0
    for end, residual in loops:
        prod = prod * end + residual - 1
    return prod + 1


def _emit(tmp_path: Path, nest: LoopNest, mapping: Mapping) -> Path:
    target = load_target("eyeriss")
    (folder,) = emit_timeloop(_schedule(nest, mapping, target), tmp_path, target)
    return folder


def _flat_factors(folder: Path) -> list[tuple[str, str]]:
    """(target, factors) of every temporal/spatial entry of timeloop-model.yaml, outermost
    first, leaving out the all-ones ones."""
    entries = yaml.safe_load((folder / "timeloop-model.yaml").read_text())["mapping"]
    return [
        (e["target"], e["factors"])
        for e in entries
        if e["type"] in ("temporal", "spatial")
        and any(end > 1 for end, _ in _timeloop_factors(e["factors"]).values())
    ]


def test_timeloop_export_writes_residual_ends_timeloops_parser_reads(tmp_path: Path) -> None:
    folder = _emit(tmp_path, K13, K13_MAP)
    assert _flat_factors(folder) == [
        ("DRAM", "K=4,N=3,M=2"),
        ("inter_PE_spatial", "K=4,1,M=1,N=1"),
    ]
    v04 = yaml.safe_load((folder / "mapping.yaml").read_text())["mapping"]
    (pe,) = [e for e in v04 if e["target"] == "PE"]
    assert pe["factors"] == ["K=4,1", "M=1", "N=1"]
    # As Timeloop reads it: every dim's loops check out to its extent.
    per_dim: dict[str, list[tuple[int, int]]] = {}
    for _target, text in _flat_factors(folder):
        for dim, pair in _timeloop_factors(text).items():
            per_dim.setdefault(dim, []).append(pair)
    assert {d: _timeloop_extent(v) for d, v in per_dim.items()} == {"K": 13, "N": 3, "M": 2}
    # And Joule reads both forms back as the mapping it wrote.
    target = load_target("eyeriss")
    for name in ("mapping.yaml", "timeloop-model.yaml"):
        assert load_mapping(folder / name, target, K13) == K13_MAP, name


def test_timeloop_export_merges_a_levels_loops_of_a_dim_with_one_residual(
    tmp_path: Path,
) -> None:
    """K = 13 as 2 x 2 (DRAM) x 4 (PEs): Timeloop has one K loop at DRAM, 4 with its last
    run 4 (digits of 12 in radix 4, 4: 3, 0). K = 5 as two X loops 2 x 3: one 6-wide loop
    that is outermost, so it always runs its residual end 5 and is written as 5 (with a
    residual the outermost spatial loop would stop Timeloop's analysis)."""
    mapping = _eyeriss(
        DRAM=((Loop("M", 2), Loop("K", 2), Loop("N", 3), Loop("K", 2)), ()),
        shared_glb=((), (Loop("K", 4, "Y"),)),
    )
    assert _flat_factors(_emit(tmp_path / "a", K13, mapping)) == [
        ("DRAM", "K=4,N=3,M=2"),
        ("inter_PE_spatial", "K=4,1,M=1,N=1"),
    ]
    k5 = matmul("k5", m=1, n=1, k=5)
    spatial = _eyeriss(shared_glb=((), (Loop("K", 2, "X"), Loop("K", 3, "X"))))
    folder = _emit(tmp_path / "b", k5, spatial)
    assert _flat_factors(folder) == [("inter_PE_column_spatial", "K=5,M=1,N=1")]
    back = load_mapping(folder / "timeloop-model.yaml", load_target("eyeriss"), k5)
    assert back == _eyeriss(shared_glb=((), (Loop("K", 5, "X"),)))


def test_timeloop_export_refuses_a_y_loop_outside_an_x_loop_of_an_imperfect_dim(
    tmp_path: Path,
) -> None:
    """Timeloop puts the X fan-out (PE_column) outside the Y fan-out (PE); for K = 5 as
    3 on Y outside 2 on X the swap would run other points, so nothing is written."""
    k5 = matmul("k5", m=1, n=1, k=5)
    mapping = _eyeriss(shared_glb=((), (Loop("K", 3, "Y"), Loop("K", 2, "X"))))
    target = load_target("eyeriss")
    schedule = _schedule(K13, K13_MAP, target)  # a layer Timeloop can take, then this one
    schedule.layers += _schedule(k5, mapping, target).layers
    with pytest.raises(MappingError, match="Timeloop cannot express the imperfect factors of K"):
        emit_timeloop(schedule, tmp_path, target)
    assert not (tmp_path / "timeloop").exists()  # no layer half-exported
    # The same order of a perfect K (= 6) exports as before.
    k6 = matmul("k6", m=1, n=1, k=6)
    assert _flat_factors(_emit(tmp_path, k6, mapping)) == [
        ("inter_PE_column_spatial", "K=2,M=1,N=1"),
        ("inter_PE_spatial", "K=3,M=1,N=1"),
    ]


def test_timeloop_reader_checks_residual_ends(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    folder = _emit(tmp_path, K13, K13_MAP)  # beside joule-dims.yaml: Timeloop M is Joule M
    text = (folder / "timeloop-model.yaml").read_text()
    bad = folder / "bad.yaml"
    bad.write_text(text.replace("K=4,1,", "K=4,2,"))
    with pytest.raises(MappingError, match="residual end of K at inter_PE_spatial is 2"):
        load_mapping(bad, target, K13)
    # As Timeloop prints a residual (src/mapping/loop.cpp, Descriptor::Print): [0:end,residual).
    printed = """DRAM [ Weights:65 Inputs:26 Outputs:6 ]
| for M in [0:2)
|   for N in [0:3)
|     for K in [0:4)
shared_glb [ Inputs:4 Outputs:1 ]
inter_PE_column_spatial [ ]
inter_PE_spatial [ ]
|       for K in [0:4,1) (Spatial-Y)
psum_spad [ Outputs:1 ]
|         << Compute >>
"""
    path = folder / "k13.map.txt"
    path.write_text(printed)
    assert load_mapping(path, target, K13) == K13_MAP


# --- --emit tvm ---------------------------------------------------------------------------


def _conv_and_matmul() -> object:
    from tvm import relax

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([1, 3, 7, 7], "float32"))
    w = relax.Var("w", relax.TensorType([5, 3, 3, 3], "float32"))
    a = relax.Var("a", relax.TensorType([7, 5], "float32"))
    b = relax.Var("b", relax.TensorType([5, 6], "float32"))
    with bb.function("main", [x, w, a, b]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, w, padding=1), name_hint="conv")
            m = bb.emit(relax.op.matmul(a, b), name_hint="mm")
            out = bb.emit_output(relax.Tuple([y, m]))
        bb.emit_func_output(out)
    return relax.transform.LegalizeOps()(bb.get())


# K = 5 as 2 x 3 (2 = ceil(5/3)) in both; the conv also P = 7 as 2 x 4, Q = 7 as 3 x 3,
# the matmul M = 7 as 4 x 2.
CONV_MAP = _eyeriss(
    DRAM=((Loop("K", 2), Loop("P", 2), Loop("C", 3)), ()),
    shared_glb=((Loop("Q", 3),), (Loop("K", 3, "X"), Loop("P", 4, "Y"))),
    weights_spad=((Loop("R", 3), Loop("S", 3), Loop("Q", 3)), ()),
)
MM_MAP = _eyeriss(
    DRAM=((Loop("K", 2), Loop("M", 4)), ()),
    shared_glb=((Loop("N", 6),), (Loop("M", 2, "X"), Loop("K", 3, "Y"))),
)


def _assert_computes_the_reference(mod, seed: int) -> None:  # noqa: ANN001 - an IRModule
    """The compiled module's conv and matmul equal numpy's on random inputs."""
    import tvm
    from tvm import relax

    rng = np.random.default_rng(seed)
    shapes = [(1, 3, 7, 7), (5, 3, 3, 3), (7, 5), (5, 6)]
    x, w, a, b = (rng.standard_normal(s).astype("float32") for s in shapes)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    conv, mm = (o.numpy() for o in vm["main"](*(tvm.runtime.tensor(v) for v in (x, w, a, b))))
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = np.zeros((1, 5, 7, 7))
    for r in range(3):
        for s in range(3):
            ref += np.einsum("nchw,kc->nkhw", xp[:, :, r : r + 7, s : s + 7], w[:, :, r, s])
    np.testing.assert_allclose(conv, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mm, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-5)


def test_tvm_imperfect_splits_compute_the_same_numbers() -> None:
    pytest.importorskip("tvm")
    from joule.passes.tvm.module_pass import JouleSchedule

    mod = JouleSchedule("eyeriss", mappings={"conv2d": CONV_MAP, "matmul": MM_MAP})(
        _conv_and_matmul()
    )
    conv_text = mod["conv2d"].script()
    assert "ff_0 * T.int64(3) + ff_1" in conv_text  # K split 2 x 3 ...
    assert "T.where" in conv_text  # ... guarded where 3*ff_0 + ff_1 >= 5
    _assert_computes_the_reference(mod, seed=0)


def test_tvm_pass_maps_with_imperfect_factors_and_stays_exact() -> None:
    """JouleSchedule(factors="imperfect") at the latency objective picks residual tiles
    for K = 5 / M = 7 on the 14 x 12 array; the compiled module still computes the
    reference numbers."""
    pytest.importorskip("tvm")
    from joule.passes.tvm.module_pass import JouleSchedule, mapping_of
    from tvm import tirx

    schedule = JouleSchedule(
        "eyeriss", objective="latency", factors="imperfect", time_limit=0.3, samples=200
    )
    mod = schedule(_conv_and_matmul())
    conv_dims = {"K": 5, "C": 3, "P": 7, "Q": 7, "R": 3, "S": 3}
    mm_dims = {"M": 7, "N": 6, "K": 5}
    imperfect = 0
    for _, func in mod.functions_items():
        mapping = mapping_of(func) if isinstance(func, tirx.PrimFunc) else None
        if mapping is None:
            continue
        dims = conv_dims if mapping.factors("P") else mm_dims
        imperfect += any(math.prod(mapping.factors(d)) != e for d, e in dims.items())
    assert imperfect >= 1
    _assert_computes_the_reference(mod, seed=1)


def test_tvm_mappings_are_scored_by_the_model_as_given() -> None:
    """The hand mappings above are valid imperfect mappings of eyeriss, not just TVM input."""
    from joule.ir.builders import conv2d

    target = load_target("eyeriss")
    conv = conv2d("c", n=1, k=5, c=3, p=7, q=7, r=3, s=3, pad=1)
    mm = matmul("m", m=7, n=6, k=5)
    for nest, mapping in ((conv, CONV_MAP), (mm, MM_MAP)):
        cost = evaluate(nest, target, mapping)
        summary = summarize(nest, mapping, cost)
        assert not summary.perfect and summary.dim("K").loops[1].residual == 2
        assert summary.lost_computes == cost.compute_cycles * summary.pes_used - nest.macs > 0


def test_tvm_refuses_factors_not_in_the_canonical_form() -> None:
    pytest.importorskip("tvm")
    from joule.passes.tvm.module_pass import JouleSchedule

    # K = 5 as 4 x 3: the outer loop would have to run ceil(5/3) = 2 times, not 4.
    bad = _eyeriss(
        DRAM=((Loop("K", 4), Loop("M", 7)), ()), shared_glb=((Loop("N", 6),), (Loop("K", 3, "Y"),))
    )
    with pytest.raises(MappingError, match=r"must run ceil\(5/3\) = 2 times"):
        JouleSchedule("eyeriss", mappings={"matmul": bad})(_conv_and_matmul())


def test_loops_text_shows_residual_runs_as_timeloop_prints_them() -> None:
    """K = 5 as 2 x 3: the inner loop's last run is 2 of 3 ([0:3,2)); a perfect dim
    prints as before."""
    mapping = Mapping(
        (LevelLoops("DRAM", (Loop("K", 2), Loop("M", 2))), LevelLoops("PE", (Loop("K", 3),)))
    )
    text = mapping.loops_text(extents={"K": 5, "M": 2})
    assert "for K in [0:2)" in text and "for K in [0:3,2)" in text
    assert "for M in [0:2)" in text
    assert "," not in mapping.loops_text()  # without extents: the factors only
