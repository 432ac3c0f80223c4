"""The TVM pass: mappings applied as s_tir schedules, shared PrimFuncs, the ``joule`` pipeline."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

tvm = pytest.importorskip("tvm")
import joule.passes.tvm  # noqa: E402
from joule.errors import MappingError  # noqa: E402
from joule.mapping import LevelLoops, Loop, Mapping  # noqa: E402
from joule.passes.tvm.apply_mapping import LEVEL_KEY, SPATIAL_KEY, apply_mapping  # noqa: E402
from joule.passes.tvm.module_pass import MAPPING_ATTR, JouleSchedule, mapping_of  # noqa: E402
from joule.passes.tvm.primfunc_nests import primfunc_loopnests  # noqa: E402
from tvm import relax, s_tir, tirx  # noqa: E402

FAST = {"mapper": "random", "samples": 20}


def _conv_matmul_module() -> tvm.IRModule:
    """A module a TVM user builds by hand: conv2d (stride 2, pad 1) and two same-shape matmuls."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType([1, 8, 16, 16], "float32"))
    w = relax.Var("w", relax.TensorType([16, 8, 3, 3], "float32"))
    a = relax.Var("a", relax.TensorType([32, 24], "float32"))
    b = relax.Var("b", relax.TensorType([24, 32], "float32"))
    with bb.function("main", [x, w, a, b]):
        with bb.dataflow():
            y = bb.emit(relax.op.nn.conv2d(x, w, strides=2, padding=1), name_hint="conv")
            m1 = bb.emit(relax.op.matmul(a, b), name_hint="mm1")
            neg = bb.emit(relax.op.negative(a), name_hint="neg")
            m2 = bb.emit(relax.op.matmul(neg, b), name_hint="mm2")
            out = bb.emit_output(relax.Tuple([y, m1, m2]))
        bb.emit_func_output(out)
    return bb.get()


def _inputs(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(1, 8, 16, 16), (16, 8, 3, 3), (32, 24), (24, 32)]
    return [rng.standard_normal(s).astype("float32") for s in shapes]


def _run(mod: tvm.IRModule, args: list[np.ndarray]) -> list[np.ndarray]:
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    out = vm["main"](*[tvm.runtime.tensor(a) for a in args])
    return [o.numpy() for o in out]


def _reference(args: list[np.ndarray]) -> list[np.ndarray]:
    x, w, a, b = (v.astype(np.float64) for v in args)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((1, 16, 8, 8))
    for r in range(3):
        for s in range(3):
            patch = xp[:, :, r : r + 16 : 2, s : s + 16 : 2]
            conv += np.einsum("nchw,kc->nkhw", patch, w[:, :, r, s])
    return [conv, a @ b, -(a @ b)]


def _mapped(mod: tvm.IRModule) -> dict[str, tirx.PrimFunc]:
    return {
        gv.name_hint: f
        for gv, f in mod.functions_items()
        if isinstance(f, tirx.PrimFunc) and MAPPING_ATTR in (f.attrs or {})
    }


def test_scheduled_conv_block_loops_are_the_mapping_factors_in_order() -> None:
    mod = relax.transform.LegalizeOps()(_conv_matmul_module())
    scheduled = JouleSchedule("eyeriss", **FAST)(mod)
    conv = next(f for name, f in _mapped(scheduled).items() if name.startswith("conv2d"))
    mapping = mapping_of(conv)
    assert mapping is not None
    record = json.loads(str(conv.attrs[MAPPING_ATTR]))
    assert record["target"] == "eyeriss" and record["block"] == "conv2d_nchw"
    sch = s_tir.Schedule(conv)
    loops = [sch.get(rv) for rv in sch.get_loops(sch.get_sblock(record["block"]))]
    mapped_loops = [lp for lp in loops if LEVEL_KEY in lp.annotations]
    expected = [
        (lvl.level, lp.factor, lp.axis)
        for lvl in mapping.levels
        for lp in (*lvl.temporal, *lvl.spatial)
    ]
    got = [
        (
            str(lp.annotations[LEVEL_KEY]),
            int(lp.extent),
            str(lp.annotations[SPATIAL_KEY]) if SPATIAL_KEY in lp.annotations else None,
        )
        for lp in mapped_loops
    ]
    assert got == expected
    # Unmapped loops are the unit dims (N here), all outside the mapped ones.
    unmapped = [lp for lp in loops if LEVEL_KEY not in lp.annotations]
    assert all(int(lp.extent) == 1 for lp in unmapped)
    assert loops[: len(unmapped)] == unmapped


def test_users_sequential_with_the_pass_compiles_and_computes_the_same_numbers() -> None:
    pipeline = tvm.transform.Sequential(
        [relax.transform.LegalizeOps(), JouleSchedule("eyeriss", **FAST)]
    )
    scheduled = pipeline(_conv_matmul_module())
    assert len(_mapped(scheduled)) == 2  # conv + the matmul PrimFunc both sites share
    args = _inputs()
    for got, ref in zip(_run(scheduled, args), _reference(args), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_sites_sharing_a_primfunc_get_copies_when_their_mappings_differ() -> None:
    mod = relax.transform.LegalizeOps()(_conv_matmul_module())
    (matmul,) = [gv.name_hint for gv, _ in mod.functions_items() if "matmul" in gv.name_hint]
    (nest,) = primfunc_loopnests(matmul, mod[matmul])
    assert dict(nest.dims) == {"M": 32, "N": 32, "K": 24}
    levels = ("DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad")

    def mapping(outer: tuple[Loop, ...]) -> Mapping:
        return Mapping(tuple(LevelLoops(n, outer if n == "DRAM" else ()) for n in levels))

    one = mapping((Loop("M", 32), Loop("N", 32), Loop("K", 24)))
    two = mapping((Loop("K", 4), Loop("N", 4), Loop("M", 32), Loop("N", 8), Loop("K", 6)))
    with pytest.raises(MappingError):  # same dim twice at a level is fine; wrong extents are not
        JouleSchedule("eyeriss", mappings={"mm1": mapping((Loop("M", 32),))})(mod)
    scheduled = JouleSchedule("eyeriss", mappings={"mm1": one, "mm2": two}, **FAST)(mod)
    mapped = _mapped(scheduled)
    copies = sorted(n for n in mapped if "matmul" in n)
    assert len(copies) == 2
    assert {mapping_of(mapped[n]) for n in copies} == {one, two}
    args = _inputs(1)
    for got, ref in zip(_run(scheduled, args), _reference(args), strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_joule_pipeline_by_name_after_tvms_own_from_onnx() -> None:
    from joule.models.graph import GraphBuilder
    from tvm.relax.frontend.onnx import from_onnx

    g = GraphBuilder("mm", random_weights=True, seed=3)
    x = g.input("x", [16, 32])
    y = g.node("MatMul", [x, g.weight("w", [32, 24])], "mm")
    g.output(y)
    model = g.model()
    mod = from_onnx(model)
    assert "joule" in relax.pipeline.PIPELINE_MAP
    ex = tvm.compile(mod, target="llvm", relax_pipeline="joule")
    data = np.random.default_rng(0).standard_normal((16, 32)).astype("float32")
    out = relax.VirtualMachine(ex, tvm.cpu())["main"](tvm.runtime.tensor(data)).numpy()
    weight = next(t for t in model.graph.initializer if t.name == "w")
    ref = data @ np.frombuffer(weight.raw_data, np.float32).reshape(32, 24)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    # The same pipeline for another target, with options: every MAC PrimFunc is mapped.
    lowered = joule.passes.tvm.joule_pipeline("tpu-ws", **FAST)(mod)
    (func,) = _mapped(lowered).values()
    assert json.loads(str(func.attrs[MAPPING_ATTR]))["target"] == "tpu-ws"


def test_importing_joule_leaves_no_import_hook_and_no_tvm() -> None:
    # Every Joule module outside the TVM package imports without TVM and leaves
    # sys.meta_path as it found it; the TVM package registers the pipeline on import.
    code = (
        "import sys, pkgutil, importlib\n"
        "hooks = list(sys.meta_path)\n"
        "import joule, joule.passes\n"
        "for n in ('joule.cost', 'joule.passes.tile', 'joule.passes.mapper.cpsat.solve'):\n"
        "    importlib.import_module(n)\n"
        "assert 'tvm' not in sys.modules, 'the mapper imported TVM'\n"
        "names = [m.name for m in pkgutil.walk_packages(joule.__path__, 'joule.')]\n"
        "names += [m.name for m in pkgutil.walk_packages(joule.passes.__path__, 'joule.passes.')]\n"
        "for n in [n for n in names if not n.endswith('__main__')]:\n"
        "    importlib.import_module(n)\n"
        "new = [f for f in sys.meta_path if f not in hooks]\n"
        "ours = [f for f in new if getattr(f, '__module__', '').startswith('joule')]\n"
        "assert not ours, ours  # TVM's own finders may stay; Joule leaves none\n"
        "from tvm import relax\n"
        "assert 'joule' in relax.pipeline.PIPELINE_MAP\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_nest_naming_a_block_the_primfunc_lacks_is_a_mapping_error() -> None:
    # get_sblock raises s_tir.ScheduleError; the handler once named tvm_ffi.Error, which
    # does not exist, so this crashed with an AttributeError instead.
    mod = relax.transform.LegalizeOps()(_conv_matmul_module())
    name, func = next(
        (gv.name_hint, f) for gv, f in mod.functions_items() if gv.name_hint.startswith("conv2d")
    )
    nest = primfunc_loopnests(name, func)[0]
    attrs = tuple((k, "no_such_block" if k == "tir.block" else v) for k, v in nest.attrs)
    with pytest.raises(MappingError, match="no block 'no_such_block' to schedule"):
        whole = Mapping((LevelLoops("DRAM", tuple(Loop(d, e) for d, e in nest.dims if e > 1)),))
        apply_mapping(func, dataclasses.replace(nest, attrs=attrs), whole)
