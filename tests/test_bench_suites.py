"""`joule bench`: each suite on a tiny configuration writes SUITE.json, SUITE.md and its PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from joule.bench.common import BENCH_TARGETS
from joule.bench.dataflows import DATAFLOW_TARGETS, study_layers
from joule.cli import main
from joule.passes.dataflow import space_constraints
from joule.targets import load_target


def _load(out: Path, suite: str) -> dict:
    assert (out / f"{suite}.md").read_text().startswith("# ")
    return json.loads((out / f"{suite}.json").read_text())


def test_bench_dataflows_writes_layers_with_energy_per_mac_and_breakdown(tmp_path: Path) -> None:
    args = ["--layers", "CONV5,FC8", "--dataflows", "rs,ws,os_c,nlr", "--time-limit", "0.2"]
    assert main(["bench", "dataflows", "--out", str(tmp_path), *args]) == 0
    data = _load(tmp_path, "dataflows")
    assert {(r["layer"], r["dataflow"]) for r in data["layers"]} == {
        (lay, df) for lay in ("CONV5", "FC8") for df in ("rs", "ws", "os_c", "nlr")
    }
    for row in data["layers"]:
        assert set(row) >= {"layer", "dataflow", "energy_per_mac", "breakdown"}
        assert sum(row["breakdown"].values()) == pytest.approx(row["energy_per_mac"])
        assert row["breakdown"]["MAC"] == pytest.approx(1.0)
    assert data["summary"]["conv"]["ratio_to_rs"]["rs"] == pytest.approx(1.0)
    assert (tmp_path / "dataflows.png").stat().st_size > 10_000


def test_bench_networks_reports_energy_bound_cycles_utilisation_and_time(tmp_path: Path) -> None:
    args = ["--networks", "alexnet", "--targets", "eyeriss-isca16", "--time-limit", "0.2"]
    assert main(["bench", "networks", "--out", str(tmp_path), *args]) == 0
    (row,) = _load(tmp_path, "networks")["results"]
    assert row["macs"] == 714_188_480 and row["layers"] == 8
    assert row["energy_pj"] >= row["lower_bound_pj"] > 0
    assert 0 < row["utilization"] <= 1 and row["cycles"] > 0 and row["solve_time_s"] > 0
    assert (tmp_path / "networks_energy.png").exists()


def test_bench_solver_scores_cpsat_and_random_against_the_exhaustive_optimum(
    tmp_path: Path,
) -> None:
    args = ["--layers", "matmul_8x8x16@shidiannao-os", "--time-limit", "0.5", "--samples", "200"]
    assert main(["bench", "solver", "--out", str(tmp_path), *args]) == 0
    rows = _load(tmp_path, "solver")["results"]
    assert [r["method"] for r in rows] == ["exhaustive", "cpsat-0.5s", "random-200"]
    assert rows[0]["quality"] == 1.0 and rows[0]["status"] == "OPTIMAL"
    assert all(r["quality"] >= 1.0 - 1e-9 for r in rows)
    assert (tmp_path / "solver_quality_time.png").exists()


def test_bench_peers_without_zigzag_says_how_to_install_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JOULE_ZIGZAG_PYTHON", str(tmp_path / "no-such-python"))
    monkeypatch.setattr("joule.bench.peers.zigzag_python", lambda: None)
    assert main(["bench", "peers", "--out", str(tmp_path)]) == 0
    assert "pip install" in capsys.readouterr().err
    assert _load(tmp_path, "peers")["available"] is False


def test_bench_rejects_an_unknown_layer_with_status_2(tmp_path: Path) -> None:
    assert main(["bench", "dataflows", "--out", str(tmp_path), "--layers", "CONV9"]) == 2


def test_dataflow_study_targets_have_equal_storage_area_at_rf_area_ratio_2() -> None:
    def area_bytes(name: str) -> float:
        t = load_target(BENCH_TARGETS / f"dataflow_{name}.yaml")
        buffer, rf = t.level("global_buffer"), t.level("rf")
        rf_words = sum(rf.capacity_for(role) for role in ("input", "weight", "output"))
        rf_bytes = 0 if name == "nlr" else rf_words * 2
        latch_bytes = rf_words * 2 if name == "nlr" else 0  # NLR's latches: same area as WS/OS
        return buffer.capacity_words * 2 + t.pes * 2 * (rf_bytes + latch_bytes)

    assert area_bytes("rs") == 256 * 512 * 2 + 128 * 1024
    assert {area_bytes(n) for n in set(DATAFLOW_TARGETS.values())} == {area_bytes("rs")}


def test_os_variants_limit_what_the_array_unrolls() -> None:
    nest = study_layers()["CONV3"]
    target = load_target(BENCH_TARGETS / "dataflow_os.yaml")
    spatial = {
        df: space_constraints(nest, target, df).spatial_x[1] for df in ("os_a", "os_b", "os_c")
    }
    assert spatial == {
        "os_a": frozenset("NPQ"),
        "os_b": frozenset("NKPQ"),
        "os_c": frozenset("K"),
    }
    # Output stationary: a PE loops only over dims the output ignores (C, R, S).
    assert space_constraints(nest, target, "os_a").temporal[2] <= {"C", "R", "S"}


def test_zigzag_eyeriss_target_loads_with_168_pes() -> None:
    target = load_target(BENCH_TARGETS / "zigzag_eyeriss.yaml")
    assert target.pes == 168 and target.mac_energy_pj == 0.5
