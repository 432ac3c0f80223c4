"""``--emit timeloop``: Joule mapping -> Timeloop v0.4 YAML -> read back -> the same mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from joule.cli import main
from joule.cost import evaluate
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import LoopNest
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.outcome import SearchOptions
from joule.targets import load_target
from joule.timeloop import load_mapping, problem_from_dict
from joule.timeloop.writer import arch_yaml, dump, mapping_yaml, problem_yaml

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


def _mapping(nest: LoopNest, target_name: str):  # noqa: ANN202
    target = load_target(target_name)
    canon = drop_unit_dims(nest)
    constraints = space_constraints(canon, target)
    options = SearchOptions(samples=30)
    return map_layer(canon, target, constraints, mapper="random", options=options).mapping


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("kind", sorted(NESTS))
def test_joule_mapping_survives_timeloop_yaml_round_trip(
    tmp_path: Path, kind: str, target_name: str
) -> None:
    nest, target = NESTS[kind], load_target(target_name)
    mapping = _mapping(nest, target_name)
    path = tmp_path / "mapping.yaml"
    path.write_text(dump(mapping_yaml(nest, mapping, target), "test"))
    assert load_mapping(path, target, nest) == mapping


@pytest.mark.parametrize("kind", sorted(NESTS))
def test_timeloop_problem_reads_back_with_joules_dims_and_projections(kind: str) -> None:
    nest = NESTS[kind]
    back = problem_from_dict(yaml.safe_load(dump(problem_yaml(nest), "test")), name=nest.name)
    assert back.dims == nest.dims and back.reduction == nest.reduction
    for role in ("input", "weight", "output"):
        got = [dict(ax.terms) for ax in back.tensor(role).projection]  # type: ignore[arg-type]
        want = [dict(ax.terms) for ax in nest.tensor(role).projection]  # type: ignore[arg-type]
        assert got == want  # offsets (padding) are dropped: Timeloop has none


def test_arch_yaml_carries_the_targets_per_access_energies() -> None:
    target = load_target("eyeriss")
    text = dump(arch_yaml(target), "test")
    assert text.startswith("# Timeloop v0.4 format")
    assert "!Component" in text and "!Container" in text
    data = yaml.safe_load(text.replace("!Component", "").replace("!Container", ""))
    tables = {t["name"].split(".")[1].split("[")[0]: t for t in data["ERT"]["tables"]}
    for lvl in target.levels:
        actions = {a["name"]: a["energy"] for a in tables[lvl.name]["actions"]}
        assert actions == {"read": lvl.read_pj, "write": lvl.write_pj, "update": lvl.update_pj}
    assert tables["mac"]["actions"] == [{"name": "compute", "energy": target.mac_energy_pj}]


def test_joule_evaluate_scores_a_joule_written_timeloop_mapping_like_the_json_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = "conv:N=1,K=16,C=8,P=8,Q=8,R=3,S=3,stride=1"
    from joule.cli.evaluate import parse_dims_spec

    nest = parse_dims_spec(spec)
    target = load_target("eyeriss")
    mapping = _mapping(nest, "eyeriss")
    path = tmp_path / "mapping.yaml"
    path.write_text(dump(mapping_yaml(nest, mapping, target), "test"))
    argv = ["evaluate", "--dims", spec, "--target", "eyeriss", "--json"]
    assert main([*argv, "--timeloop-mapping", str(path)]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["energy_pj"] == pytest.approx(evaluate(nest, target, mapping).energy_pj)
