"""``joule evaluate`` prints the model's numbers; bad inputs exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joule.cli import main
from joule.cli.evaluate import parse_dims_spec
from joule.cost import evaluate
from joule.mapping import LevelLoops, Loop, Mapping
from joule.targets.loader import load_target
from joule.timeloop import load_mapping, load_problem

DATA = Path(__file__).resolve().parent / "data" / "timeloop"
SPEC = "conv:N=1,K=4,C=2,P=4,Q=4,R=3,S=3,stride=1"

# A small valid eyeriss mapping of SPEC: K over the array's Y axis, Q over X.
MAPPING = Mapping(
    (
        LevelLoops("DRAM", (Loop("C", 2),)),
        LevelLoops("shared_glb", (Loop("P", 4), Loop("S", 3)), (Loop("Q", 4, "X"),)),
        LevelLoops("ifmap_spad"),
        LevelLoops("weights_spad", (Loop("R", 3),)),
        LevelLoops("psum_spad", (Loop("K", 4),)),
    )
)


@pytest.fixture
def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.json"
    path.write_text(MAPPING.to_json())
    return path


def test_json_output_is_exactly_the_cost_result(mapping_file: Path, capsys) -> None:  # noqa: ANN001
    code = main(
        [
            "evaluate",
            "--target",
            "eyeriss",
            "--dims",
            SPEC,
            "--mapping",
            str(mapping_file),
            "--json",
        ]
    )
    assert code == 0
    expected = evaluate(parse_dims_spec(SPEC), load_target("eyeriss"), MAPPING).to_dict()
    assert json.loads(capsys.readouterr().out) == expected


def test_text_output_has_a_row_per_level_and_tensor_and_totals(mapping_file: Path, capsys) -> None:  # noqa: ANN001
    assert (
        main(["evaluate", "--target", "eyeriss", "--dims", SPEC, "--mapping", str(mapping_file)])
        == 0
    )
    out = capsys.readouterr().out
    result = evaluate(parse_dims_spec(SPEC), load_target("eyeriss"), MAPPING)
    for level, roles in result.accesses.items():
        for role, counts in roles.items():
            row = next(line for line in out.splitlines() if line.split()[:2] == [level, role])
            assert f"{counts.reads:,}" in row and f"{counts.updates:,}" in row
    assert f"{result.energy_pj:,.1f} pJ" in out
    assert f"cycles       {result.cycles:,}" in out
    assert "utilization" in out and "lower bound" in out


def test_timeloop_problem_and_mapping_score_like_the_api(capsys) -> None:  # noqa: ANN001
    problem = DATA / "problems" / "alexnet_conv3.yaml"
    mapping = DATA / "mappings" / "alexnet_conv3.map.yaml"
    args = ["evaluate", "--target", "eyeriss", "--timeloop-problem", str(problem)]
    assert main([*args, "--timeloop-mapping", str(mapping), "--json"]) == 0
    eyeriss = load_target("eyeriss")
    nest = load_problem(problem)
    expected = evaluate(nest, eyeriss, load_mapping(mapping, eyeriss, nest)).to_dict()
    assert json.loads(capsys.readouterr().out) == expected


def test_model_layer_is_lowered_and_scored(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    # resnet18's first conv: N1 K64 C3 P112 Q112 R7 S7, stride 2, pad 3.
    mapping = Mapping(
        (
            LevelLoops("DRAM", (Loop("K", 4), Loop("P", 112), Loop("C", 3), Loop("S", 7))),
            LevelLoops("shared_glb", (Loop("Q", 8),), (Loop("Q", 14, "X"), Loop("K", 8, "Y"))),
            LevelLoops("ifmap_spad"),
            LevelLoops("weights_spad", (Loop("R", 7),)),
            LevelLoops("psum_spad", (Loop("K", 2),)),
        )
    )
    path = tmp_path / "m.json"
    path.write_text(mapping.to_json())
    args = ["evaluate", "resnet18", "--layer", "/conv1/Conv", "--target", "eyeriss"]
    assert main([*args, "--mapping", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["energy_pj"] > 0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--target", "no-such-target", "--dims", SPEC, "--mapping", "M"], "unknown target"),
        (
            ["--target", "eyeriss", "--dims", SPEC, "--mapping", "/absent/m.json"],
            "cannot read mapping",
        ),
        (["--target", "eyeriss", "--dims", "conv:K=4", "--mapping", "M"], "missing"),
        (["--target", "eyeriss", "--dims", "pool:K=4", "--mapping", "M"], "unknown layer kind"),
        (["--target", "eyeriss", "--dims", SPEC], "exactly one mapping"),
        (["--target", "eyeriss", "--mapping", "M"], "exactly one layer"),
        (
            ["--target", "eyeriss", "--timeloop-problem", "/absent/p.yaml", "--mapping", "M"],
            "cannot read Timeloop problem",
        ),
        (["--target", "eyeriss", "resnet18", "--mapping", "M"], "add --layer"),
    ],
)
def test_bad_inputs_exit_2_with_a_message(args: list[str], words: str, capsys) -> None:  # noqa: ANN001
    assert main(["evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_invalid_mapping_exits_2_naming_the_violation(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    bad = Mapping((*MAPPING.levels[:4], LevelLoops("psum_spad", (Loop("K", 2),))))
    path = tmp_path / "bad.json"
    path.write_text(bad.to_json())
    assert main(["evaluate", "--target", "eyeriss", "--dims", SPEC, "--mapping", str(path)]) == 2
    assert "factors of K are [2]" in capsys.readouterr().err
    path.write_text("{not json")
    assert main(["evaluate", "--target", "eyeriss", "--dims", SPEC, "--mapping", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
