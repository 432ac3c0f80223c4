"""``--emit timeloop``: what Joule writes for Timeloop, read back and held to what Timeloop ran.

Two forms per layer: the v0.4 front-end files (problem/arch/mapping.yaml, for
timeloopfe) and the processed flat file (timeloop-model.yaml + ERT.yaml, for the
C++ timeloop-model). Timeloop is not installed here, so the flat file is compared,
structure and every number, with the ``parsed-processed-input.yaml`` that
timeloop-model really ran on Joule's mappings (../shared/reference/timeloop/
joule-exports, made with timeloopfe from Joule's v0.4 files, see its README).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from joule.cli import main
from joule.cost import evaluate
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import LoopNest
from joule.lower import lower_model
from joule.mapping import Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.outcome import SearchOptions
from joule.schedule import LayerSchedule, Schedule
from joule.targets import load_target
from joule.targets.spec import Target
from joule.timeloop import load_mapping, load_problem
from joule.timeloop.mapping import mapping_levels_from_yaml, to_joule
from joule.timeloop.writer import emit_timeloop, layer_dir_name, timeloop_names

TARGETS = ("eyeriss", "eyeriss-isca16", "tpu-ws", "shidiannao-os")
NESTS: dict[str, LoopNest] = {
    "conv_strided_padded": conv2d("c", n=1, k=32, c=16, p=8, q=8, r=3, s=3, stride=2, pad=1),
    "conv_dilated": conv2d("d", n=1, k=16, c=8, p=8, q=8, r=3, s=3, dilation=2, pad=2),
    "conv_grouped": conv2d("g", n=1, k=32, c=32, p=8, q=8, r=3, s=3, groups=4),
    "conv_depthwise": conv2d("dw", n=1, k=16, c=16, p=8, q=8, r=3, s=3, groups=16),
    "conv_pointwise_batch2": conv2d("pw", n=2, k=32, c=16, p=4, q=4, r=1, s=1),
    "matmul": matmul("mm", m=16, n=32, k=64),
    "batched_matmul": matmul("bmm", m=16, n=16, k=8, batch=(1, 4)),
}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference" / "timeloop" / "joule-exports"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared is absent")
# Keys of parsed-processed-input.yaml that timeloop-model does not read (the mapper's,
# timeloopfe's, Accelergy's; the constraints, empty for the model): Joule leaves them out.
NOT_FOR_THE_MODEL = {
    "architecture_constraints",
    "compound_components",
    "globals",
    "mapper",
    "mapspace",
}
# One layer of each kind, in the default run (the other 93 are behind -m slow).
SHARED_LAYERS = (
    "alexnet/features_features.0_Conv",  # stride 4, 11x11
    "resnet18/layer2_layer2.0_conv1_Conv",  # stride 2, 3x3
    "mobilenet_v2/features_features.1_features.1.conv_features.1.conv.0_features.1.conv.0.0_Conv",
    "mobilenet_v2/features_features.2_features.2.conv_features.2.conv.1_features.2.conv.1.0_Conv",
    "alexnet/classifier_classifier.1_Gemm",  # FC: Timeloop M is Joule's M here
)


def _mapping(nest: LoopNest, target_name: str) -> Mapping:
    target = load_target(target_name)
    canon = drop_unit_dims(nest)
    constraints = space_constraints(canon, target)
    options = SearchOptions(samples=30)
    return map_layer(canon, target, constraints, mapper="random", options=options).mapping


def _emit(out: Path, nest: LoopNest, mapping: Mapping, target: Target) -> Path:
    """The layer folder ``emit_timeloop`` writes for a one-layer schedule."""
    layer = LayerSchedule(nest, mapping, evaluate(nest, target, mapping), {}, "free")
    schedule = Schedule("m", target.name, "", "energy", "free", "random", [layer], [])
    (folder,) = emit_timeloop(schedule, out, target)
    return folder


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("kind", sorted(NESTS))
def test_both_forms_read_back_as_the_same_layer_and_mapping(
    tmp_path: Path, kind: str, target_name: str
) -> None:
    nest, target = NESTS[kind], load_target(target_name)
    mapping = _mapping(nest, target_name)
    folder = _emit(tmp_path, nest, mapping, target)
    for name in ("mapping.yaml", "timeloop-model.yaml"):
        assert load_mapping(folder / name, target, nest) == mapping, name
    for name in ("problem.yaml", "timeloop-model.yaml"):
        back = load_problem(folder / name)  # joule-dims.yaml gives back Joule's names
        assert back.dims == nest.dims and back.reduction == nest.reduction, name
        for role in ("input", "weight", "output"):
            got = [dict(ax.terms) for ax in back.tensor(role).projection]  # type: ignore[arg-type]
            want = [dict(ax.terms) for ax in nest.tensor(role).projection]  # type: ignore[arg-type]
            assert got == want  # offsets (padding) are dropped: Timeloop has none


@pytest.mark.parametrize("target_name", TARGETS)
def test_v04_files_avoid_what_timeloopfe_rejects(tmp_path: Path, target_name: str) -> None:
    """timeloopfe 0.4 refused ERT actions without arguments, ``type: datatype`` and
    ``joule_dims`` at the top level. (It accepts these files and makes of them exactly what
    timeloop-model ran; checked apart, as timeloopfe is no dependency.)"""
    nest, target = NESTS["conv_strided_padded"], load_target(target_name)
    folder = _emit(tmp_path, nest, _mapping(nest, target_name), target)
    tags = folder / "arch.yaml"
    arch = yaml.safe_load(tags.read_text().replace("!Component", "").replace("!Container", ""))
    assert set(arch) == {"architecture", "ERT", "variables"}
    assert all("arguments" in a for t in arch["ERT"]["tables"] for a in t["actions"])
    assert set(_yaml(folder / "problem.yaml")) == {"problem"}
    mapping = _yaml(folder / "mapping.yaml")
    assert set(mapping) == {"mapping"}
    assert {e["type"] for e in mapping["mapping"]} == {"dataspace", "temporal", "spatial"}
    dims = {"N": "N", "M": "K", "C": "C", "P": "P", "Q": "Q", "R": "R", "S": "S"}
    assert _yaml(folder / "joule-dims.yaml") == {"joule_dims": dims}


@pytest.mark.parametrize("target_name", TARGETS)
def test_flat_file_has_one_node_per_level_with_the_targets_instances(
    tmp_path: Path, target_name: str
) -> None:
    """Fan-outs become ``inter_*_spatial`` dummies; each level keeps its instance count
    (tpu-ws has two fan-outs, which no Timeloop run covers)."""
    nest, target = NESTS["matmul"], load_target(target_name)
    folder = _emit(tmp_path, nest, _mapping(nest, target_name), target)
    (top,) = _yaml(folder / "timeloop-model.yaml")["architecture"]["subtree"]
    names = [node["name"] for node in top["local"]]
    expected = [f"{lvl.name}[1..{lvl.instances}]" for lvl in target.levels]
    expected.append(f"mac[1..{target.levels[-1].instances}]")
    assert [n for n in names if not n.startswith("inter_")] == expected
    fanouts = [target.fanout(i) for i in range(len(target.levels))]
    assert len(names) == len(expected) + sum((x > 1) + (y > 1) for x, y in fanouts)


def test_arch_and_ert_carry_the_targets_per_access_energies(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    nest = NESTS["matmul"]
    folder = _emit(tmp_path, nest, _mapping(nest, "eyeriss"), target)
    text = (folder / "arch.yaml").read_text()
    assert text.startswith("# Timeloop v0.4 format")
    assert "!Component" in text and "!Container" in text
    data = yaml.safe_load(text.replace("!Component", "").replace("!Container", ""))
    ert = _yaml(folder / "ERT.yaml")
    without_arguments = [
        {**t, "actions": [{k: v for k, v in a.items() if k != "arguments"} for a in t["actions"]]}
        for t in data["ERT"]["tables"]
    ]
    assert ert["ERT"]["tables"] == without_arguments
    tables = {t["name"].split(".")[1].split("[")[0]: t for t in ert["ERT"]["tables"]}
    for lvl in target.levels:
        actions = {a["name"]: a["energy"] for a in tables[lvl.name]["actions"]}
        assert actions == {"read": lvl.read_pj, "write": lvl.write_pj, "update": lvl.update_pj}
    assert tables["mac"]["actions"] == [{"name": "compute", "energy": target.mac_energy_pj}]


@pytest.mark.parametrize("kind", ["conv_pointwise_batch2", "matmul"])
@pytest.mark.parametrize("form", ["v0.4", "flat"])
def test_joule_evaluate_scores_joules_timeloop_files_like_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, form: str
) -> None:
    nest, target = NESTS[kind], load_target("eyeriss")
    mapping = _mapping(nest, "eyeriss")
    folder = _emit(tmp_path, nest, mapping, target)
    problem, given = (
        ("problem.yaml", "mapping.yaml") if form == "v0.4" else ("timeloop-model.yaml",) * 2
    )
    argv = ["evaluate", "--timeloop-problem", str(folder / problem), "--target", "eyeriss"]
    assert main([*argv, "--timeloop-mapping", str(folder / given), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["energy_pj"] == pytest.approx(evaluate(nest, target, mapping).energy_pj)


# --- against what timeloop-model ran (../shared) ---------------------------------------


@functools.cache
def _nests(net: str) -> dict[str, LoopNest]:
    """The model's loop nests by layer folder name, as ``joule compile`` emits them."""
    return {layer_dir_name(n.name): n for n in lower_model(net).loopnests}


def _typed(value: Any) -> Any:
    """Comparable form: leaves tagged with their YAML kind (``true`` is not ``1``,
    ``'0.4'`` not ``0.4``); required_actions as a set (timeloopfe's order varies)."""
    if isinstance(value, dict):
        return {k: sorted(v) if k == "required_actions" else _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    return ("number", float(value))


def _difference(ours: Any, theirs: Any, where: str = "") -> str | None:
    """Where the two first differ, for the assertion message."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        if set(ours) != set(theirs):
            return f"{where}: keys {sorted(ours)} != {sorted(theirs)}"
        found = (_difference(ours[k], theirs[k], f"{where}.{k}") for k in ours)
        return next((d for d in found if d), None)
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        found = (
            _difference(a, b, f"{where}[{i}]")
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
        )
        return next((d for d in found if d), None)
    return None if ours == theirs else f"{where}: Joule {ours!r} != Timeloop's {theirs!r}"


def _check_shared_layer(layer: str, tmp_path: Path) -> None:
    """Joule's mapping read out of what timeloop-model ran, written again: the same file."""
    net, folder = layer.split("/")
    ran = _yaml(SHARED / layer / "parsed-processed-input.yaml")
    nest, target = _nests(net)[folder], load_target("eyeriss")
    names = {t: j for j, t in timeloop_names(nest).items()}  # no joule-dims.yaml there
    mapping = to_joule(mapping_levels_from_yaml(ran, layer, names), target, nest, source=layer)
    written = _emit(tmp_path, nest, mapping, target)
    assert written.name == folder
    ours = _yaml(written / "timeloop-model.yaml")
    assert set(ran) - set(ours) == NOT_FOR_THE_MODEL
    assert ran["architecture_constraints"] == {"targets": []}
    theirs = {k: ran[k] for k in ours}
    assert _typed(ours) == _typed(theirs), _difference(_typed(ours), _typed(theirs))
    ert, ran_ert = _yaml(written / "ERT.yaml"), _yaml(SHARED / layer / "ERT.yaml")
    assert _typed(ert) == _typed(ran_ert), _difference(_typed(ert), _typed(ran_ert))


@pytest.mark.shared
@needs_shared
@pytest.mark.parametrize("layer", SHARED_LAYERS)
def test_flat_file_is_what_timeloop_model_ran(layer: str, tmp_path: Path) -> None:
    _check_shared_layer(layer, tmp_path)


def _all_shared_layers() -> list[str]:
    if not SHARED.is_dir():
        return []
    runs = sorted(SHARED.glob("*/*/parsed-processed-input.yaml"))
    return [f"{p.parent.parent.name}/{p.parent.name}" for p in runs]


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
@pytest.mark.parametrize("layer", _all_shared_layers())
def test_flat_file_is_what_timeloop_model_ran_on_every_layer(layer: str, tmp_path: Path) -> None:
    _check_shared_layer(layer, tmp_path)
