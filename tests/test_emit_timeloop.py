"""``--emit timeloop``: Joule mapping -> Timeloop v0.4 YAML -> read back -> the same mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from joule.cli import main
from joule.cost import evaluate
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import LoopNest
from joule.mapping import Mapping
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.outcome import SearchOptions
from joule.schedule import LayerSchedule, Schedule
from joule.targets import load_target
from joule.targets.spec import Target
from joule.timeloop import load_mapping, load_problem
from joule.timeloop.writer import emit_timeloop

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
def test_v04_files_read_back_as_the_same_layer_and_mapping(
    tmp_path: Path, kind: str, target_name: str
) -> None:
    nest, target = NESTS[kind], load_target(target_name)
    mapping = _mapping(nest, target_name)
    folder = _emit(tmp_path, nest, mapping, target)
    assert load_mapping(folder / "mapping.yaml", target, nest) == mapping
    back = load_problem(folder / "problem.yaml")  # joule-dims.yaml gives back Joule's names
    assert back.dims == nest.dims and back.reduction == nest.reduction
    for role in ("input", "weight", "output"):
        got = [dict(ax.terms) for ax in back.tensor(role).projection]  # type: ignore[arg-type]
        want = [dict(ax.terms) for ax in nest.tensor(role).projection]  # type: ignore[arg-type]
        assert got == want  # offsets (padding) are dropped: Timeloop has none


@pytest.mark.parametrize("target_name", TARGETS)
def test_v04_files_avoid_what_timeloopfe_rejects(tmp_path: Path, target_name: str) -> None:
    """timeloopfe 0.4 refused ERT actions without arguments, ``type: datatype`` and
    ``joule_dims`` at the top level. (It accepts these files; checked apart, as timeloopfe
    is no dependency.)"""
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


def test_arch_yaml_carries_the_targets_per_access_energies(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    nest = NESTS["matmul"]
    folder = _emit(tmp_path, nest, _mapping(nest, "eyeriss"), target)
    text = (folder / "arch.yaml").read_text()
    assert text.startswith("# Timeloop v0.4 format")
    assert "!Component" in text and "!Container" in text
    data = yaml.safe_load(text.replace("!Component", "").replace("!Container", ""))
    tables = {t["name"].split(".")[1].split("[")[0]: t for t in data["ERT"]["tables"]}
    for lvl in target.levels:
        actions = {a["name"]: a["energy"] for a in tables[lvl.name]["actions"]}
        assert actions == {"read": lvl.read_pj, "write": lvl.write_pj, "update": lvl.update_pj}
    mac = {"name": "compute", "energy": target.mac_energy_pj, "arguments": {}}
    assert tables["mac"]["actions"] == [mac]


@pytest.mark.parametrize("kind", ["conv_pointwise_batch2", "matmul"])
def test_joule_evaluate_scores_joules_timeloop_files_like_the_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    nest, target = NESTS[kind], load_target("eyeriss")
    mapping = _mapping(nest, "eyeriss")
    folder = _emit(tmp_path, nest, mapping, target)
    argv = ["evaluate", "--timeloop-problem", str(folder / "problem.yaml"), "--target", "eyeriss"]
    assert main([*argv, "--timeloop-mapping", str(folder / "mapping.yaml"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["energy_pj"] == pytest.approx(evaluate(nest, target, mapping).energy_pj)
