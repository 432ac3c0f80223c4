"""``joule compile`` end to end: every schema key present, reports and plots written,
the Python API returning the same content, numbers that are the cost model's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joule import compile_model
from joule.cli import main
from joule.cost import evaluate
from joule.mapping import Mapping
from joule.schedule import strip_times

LAYER_KEYS = {
    "name",
    "op",
    "onnx_node",
    "dims",
    "macs",
    "mapping",
    "energy_pj",
    "energy_breakdown_pj",
    "mac_energy_pj",
    "cycles",
    "utilization",
    "lower_bound_pj",
    "solver",
}
SOLVER_KEYS = {"status", "objective", "bound", "gap", "time_s"}
TOTAL_KEYS = {"energy_pj", "cycles", "macs", "lower_bound_pj", "time_s"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    code = main(
        [
            "compile",
            "transformer",
            "--target",
            "eyeriss",
            "--out",
            str(out),
            "--time-limit",
            "0.2",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    return out


def test_schedule_json_has_every_key_of_the_schema(compiled: Path) -> None:
    data = json.loads((compiled / "schedule.json").read_text())
    assert {"model", "target", "objective", "layers", "totals"} <= data.keys()
    assert data["layers"], "the transformer has matmul layers"
    for layer in data["layers"]:
        assert LAYER_KEYS <= layer.keys()
        assert SOLVER_KEYS <= layer["solver"].keys()
    assert TOTAL_KEYS <= data["totals"].keys()
    assert data["unmapped_ops"], "softmax, layernorm etc. are listed, not dropped"


def test_totals_add_up_and_include_mac_energy(compiled: Path) -> None:
    data = json.loads((compiled / "schedule.json").read_text())
    layers = data["layers"]
    assert data["totals"]["energy_pj"] == pytest.approx(sum(x["energy_pj"] for x in layers))
    assert data["totals"]["macs"] == sum(x["macs"] for x in layers)
    for x in layers:
        parts = sum(v for roles in x["energy_breakdown_pj"].values() for v in roles.values())
        assert x["energy_pj"] == pytest.approx(parts + x["mac_energy_pj"])
        assert x["energy_pj"] >= x["lower_bound_pj"]


def test_reports_and_plots_are_written(compiled: Path) -> None:
    md = (compiled / "report.md").read_text()
    html = (compiled / "report.html").read_text()
    for text in (md, html):
        assert "energy_by_level.png" in text and "Unmapped ops" in text
        assert "for " in text  # mappings written out as loops
    for png in ("energy_by_level.png", "energy_by_tensor.png", "utilization.png"):
        assert (compiled / png).read_bytes()[:4] == b"\x89PNG"


def test_reported_numbers_are_the_cost_models(compiled: Path) -> None:
    from joule.lower import lower_model
    from joule.targets import load_target

    data = json.loads((compiled / "schedule.json").read_text())
    nests = {n.name: n for n in lower_model("transformer").loopnests}
    target = load_target("eyeriss")
    for layer in data["layers"]:
        cost = evaluate(nests[layer["name"]], target, Mapping.from_dict(layer["mapping"]))
        assert cost.energy_pj == pytest.approx(layer["energy_pj"], rel=1e-12)
        assert cost.cycles == layer["cycles"]


def test_python_api_returns_the_same_schedule(compiled: Path) -> None:
    schedule = compile_model("transformer", "eyeriss", time_limit=0.2, workers=2)
    on_disk = json.loads((compiled / "schedule.json").read_text())
    api = json.loads(schedule.to_json())
    assert strip_times(api) == strip_times(on_disk)


def test_exhaustive_mapper_refuses_huge_spaces_with_a_clear_message(tmp_path: Path, capsys) -> None:
    code = main(["compile", "resnet18", "--out", str(tmp_path), "--mapper", "exhaustive"])
    assert code == 2
    err = capsys.readouterr().err
    assert "too many to enumerate" in err and "Traceback" not in err
