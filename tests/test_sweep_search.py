"""``search:`` in a sweep file: pymoo's NSGA-II (real library, no mock) and uniform random
sampling over the parameter lists, every proposal mapped by the full mapper through the
sweep's machinery; deterministic for a seed; hypervolume by pymoo's HV indicator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from joule.cli import main
from joule.hardware.search import hypervolume
from joule.hardware.sweep import SweepError, load_sweep, pareto_front, run_sweep, strip_times

pytest.importorskip("pymoo")  # pinned in the sweep and test extras

GRID = {"mesh_x": [2, 3, 4], "mesh_y": [2, 4], "glb_kib": [8, 16], "weights_spad_depth": [16, 32]}
REFERENCE = {"energy": 2.0e7, "area": 6.0}


def _doc(model: Path, **search) -> dict:
    return {
        "template": "eyeriss-template",
        "parameters": GRID,
        "networks": [str(model)],
        "objectives": ["energy", "area"],
        "mapper": {"time_limit": 0.05},
        "search": {"reference": REFERENCE, **search},
    }


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_sweep import _tiny_onnx

    return _tiny_onnx(tmp_path_factory.mktemp("search") / "tiny.onnx")


@pytest.fixture(scope="module")
def nsga_file(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nsga") / "nsga.yaml"
    path.write_text(
        yaml.safe_dump(_doc(model, method="nsga2", evaluations=6, population=3), sort_keys=False)
    )
    return path


@pytest.fixture(scope="module")
def nsga_run(nsga_file: Path, tmp_path_factory: pytest.TempPathFactory):
    return run_sweep(load_sweep(nsga_file), tmp_path_factory.mktemp("nsga_out"), workers=2)


def test_nsga2_maps_its_evaluations_over_generations(nsga_run) -> None:
    points = nsga_run.points
    assert len(points) == 6 and nsga_run.solved_now == 6
    assert all(p["status"] == "ok" for p in points)
    assert len({json.dumps(p["params"], sort_keys=True) for p in points}) == 6  # distinct
    for p in points:
        for name, value in p["params"].items():
            assert value in GRID[name]
        for lay in next(iter(p["networks"].values()))["layers"]:
            assert lay["status"] in ("OPTIMAL", "FEASIBLE") and lay["gap"] >= 0
    # a first population of 3, then offspring NSGA-II bred from the mapped results
    assert [p["generation"] for p in points] == [0, 0, 0, 1, 1, 1]
    assert nsga_run.search["method"] == "nsga2" and nsga_run.search["generations"] == 2
    assert nsga_run.front == pareto_front(points, ["energy", "area"])
    assert nsga_run.search["hypervolume"] == pytest.approx(
        hypervolume([points[i] for i in nsga_run.front], ["energy", "area"], REFERENCE)
    )
    assert 0 < nsga_run.search["hypervolume"] < 1


def test_nsga2_is_deterministic_for_a_seed(nsga_run, nsga_file: Path, tmp_path: Path) -> None:
    """A fresh output folder (no cache, nothing to resume): the same points in the same
    order with the same mappings; the rerun in the first folder reuses all of them."""
    again = run_sweep(load_sweep(nsga_file), tmp_path / "again", workers=1)
    assert again.solved_now == 6
    assert strip_times(again.points) == strip_times(nsga_run.points)
    assert again.search == nsga_run.search
    resumed = run_sweep(load_sweep(nsga_file), nsga_run.out, workers=2)
    assert resumed.solved_now == 0 and resumed.reused == 6
    assert strip_times(resumed.points) == strip_times(nsga_run.points)


def test_the_seed_changes_the_search(model: Path, nsga_run, tmp_path: Path) -> None:
    path = tmp_path / "seed.yaml"
    path.write_text(
        yaml.safe_dump(_doc(model, method="nsga2", evaluations=3, population=3), sort_keys=False)
    )
    spec = load_sweep(path)
    first = {json.dumps(p["params"], sort_keys=True) for p in nsga_run.points[:3]}
    for seed in (1, 2, 3):
        spec = type(spec)(**{**spec.__dict__, "search": {**spec.search, "seed": seed}})
        # the initial population alone, answered from the first run's folder where it can be
        start = run_sweep(spec, nsga_run.out, workers=2)
        if {json.dumps(p["params"], sort_keys=True) for p in start.points} != first:
            return
    pytest.fail("seeds 0-3 all drew the same initial population")


def test_random_sampling_draws_distinct_points_uniformly(model: Path, nsga_run) -> None:
    """Random sampling with numpy's default_rng(seed), answered from the NSGA-II run's cache
    and log where points coincide (the point id does not depend on the search)."""
    path = nsga_run.out / "random.yaml"
    path.write_text(
        yaml.safe_dump(_doc(model, method="random", evaluations=4, seed=7), sort_keys=False)
    )
    result = run_sweep(load_sweep(path), nsga_run.out, workers=2)
    sizes = [len(v) for v in GRID.values()]
    drawn = np.random.default_rng(7).choice(int(np.prod(sizes)), size=4, replace=False)
    expected = [
        {n: GRID[n][int(i)] for n, i in zip(GRID, np.unravel_index(f, sizes), strict=True)}
        for f in drawn
    ]
    assert [p["params"] for p in result.points] == expected
    assert result.search["generations"] == 1
    by_id = {p["id"]: p for p in nsga_run.points}
    for p in result.points:
        if p["id"] in by_id:  # the same design point: the same record, not mapped again
            assert (
                p.get("reused") and strip_times([p])[0]["energy_pj"] == by_id[p["id"]]["energy_pj"]
            )


def test_cli_prints_search_and_hypervolume(nsga_run, nsga_file: Path, capsys) -> None:
    assert main(["sweep", str(nsga_file), "--out", str(nsga_run.out), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "search nsga2 (seed 0): 6 evaluations, 2 generation(s); hypervolume" in out
    assert "reference point: energy 2e+07, area 6" in out
    summary = json.loads((nsga_run.out / "points.json").read_text())["summary"]
    assert summary["search"]["hypervolume"] == pytest.approx(nsga_run.search["hypervolume"])
    assert "hypervolume" in (nsga_run.out / "report.html").read_text()


def test_hypervolume_unit() -> None:
    ok = {"status": "ok"}
    pts = [
        {**ok, "energy_pj": 0.5, "area_mm2": 0.5},
        {**ok, "energy_pj": 0.25, "area_mm2": 0.75},
        {**ok, "energy_pj": 2.0, "area_mm2": 0.1},  # outside the reference box: adds nothing
        {"status": "failed"},
    ]
    ref = {"energy": 1.0, "area": 1.0}
    # 0.5 x 0.5 box, plus the strip [0.25, 0.5] x [0.75 .. 1] = 0.25 x 0.25
    assert hypervolume(pts, ["energy", "area"], ref) == pytest.approx(0.25 + 0.0625)
    assert hypervolume(pts[2:], ["energy", "area"], ref) == 0.0


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"method": "anneal"}, "unknown search method"),
        ({"method": "nsga2"}, "needs 'evaluations'"),
        ({"method": "nsga2", "evaluations": 4, "population": 1}, "population"),
        ({"method": "random", "evaluations": 4, "reference": {"energy": 1}}, "one value per"),
        ({"method": "random", "evaluations": 4, "budget": 3}, "unknown search key"),
    ],
)
def test_bad_search_blocks_are_errors(tmp_path: Path, search: dict, message: str) -> None:
    doc = {"template": "t", "parameters": {"a": [1]}, "networks": ["x"], "search": search}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SweepError, match=message):
        load_sweep(path)


def test_prune_needs_a_grid(tmp_path: Path) -> None:
    doc = {
        "template": "t",
        "parameters": {"a": [1]},
        "networks": ["x"],
        "prune": True,
        "search": {"method": "nsga2", "evaluations": 3},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SweepError, match="grid sweep only"):
        load_sweep(path)
