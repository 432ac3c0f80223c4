"""``joule sweep``: design points of a template mapped by the full mapper, failures and
area-infeasible points recorded with their reason, the Pareto front, the outputs, resume
after a kill without re-solving finished (layer, design) pairs, and the same results
through a real local Ray instance as through the process pool."""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from joule.cli import main
from joule.hardware import load_template
from joule.hardware.sweep import (
    OBJECTIVE_KEYS,
    SweepError,
    load_sweep,
    pareto_front,
    run_sweep,
    strip_times,
)
from onnx import TensorProto, helper, numpy_helper

TIME_LIMIT = 0.05


def _tiny_onnx(path: Path) -> Path:
    """Three 3x3 convs on an 8x8 map; the last two have one shape (solved once per design)."""
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)
        for name, shape in (("w1", (8, 4, 3, 3)), ("w2", (8, 8, 3, 3)), ("w3", (8, 8, 3, 3)))
    ]
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=pads),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w2"], ["c"], pads=pads),
        helper.make_node("Conv", ["c", "w3"], ["y"], pads=pads),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])],
        weights,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _area(**params) -> float:
    return load_template("eyeriss-template").instantiate(params).area_mm2


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    model = _tiny_onnx(root / "tiny.onnx")
    fixed = {"glb_kib": 16, "mesh_y": 4}
    sized = {**fixed, "weights_spad_depth": 16}
    # mesh_x 0 is an invalid target; mesh_x 8 is over the area limit; 2 and 4 are mapped
    limit = (_area(mesh_x=4, **sized) + _area(mesh_x=8, **sized)) / 2
    doc = {
        "template": "eyeriss-template",
        "parameters": {"mesh_x": [0, 2, 4, 8], "weights_spad_depth": [16]},
        "fixed": fixed,
        "networks": [str(model)],
        "objectives": ["energy", "area"],
        "constraints": {"area_mm2": limit},
        "mapper": {"time_limit": TIME_LIMIT},
    }
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def pool_run(sweep_file: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("pool")
    return run_sweep(load_sweep(sweep_file), out, workers=2)


def test_every_point_is_recorded_with_status_and_reason(pool_run) -> None:
    by_x = {p["params"]["mesh_x"]: p for p in pool_run.points}
    assert by_x[0]["status"] == "failed" and "invalid target" in by_x[0]["reason"]
    assert by_x[8]["status"] == "infeasible" and "area" in by_x[8]["reason"]
    assert by_x[8]["networks"] == {}  # not mapped
    for x in (2, 4):
        p = by_x[x]
        assert p["status"] == "ok" and p["reason"] is None
        (net,) = p["networks"].values()
        assert len(net["layers"]) == 3
        assert [lay["shared_with"] for lay in net["layers"]].count(None) == 2  # shapes solved once
        for lay in net["layers"]:
            assert lay["status"] in ("OPTIMAL", "FEASIBLE")
            assert lay["gap"] is not None and lay["gap"] >= 0
            assert lay["energy_pj"] >= lay["bound_pj"] * (1 - 1e-9)
        assert p["energy_pj"] == pytest.approx(sum(p["level_energy_pj"].values()))
        assert p["energy_pj"] == pytest.approx(net["energy_pj"])
        assert p["edp"] == pytest.approx(p["energy_pj"] * p["cycles"])
        assert p["area_mm2"] == pytest.approx(
            _area(mesh_x=x, glb_kib=16, mesh_y=4, weights_spad_depth=16)
        )
        assert p["pes"] == 4 * x


def test_front_is_exactly_the_non_dominated_feasible_points(pool_run) -> None:
    keys = [OBJECTIVE_KEYS[o] for o in ("energy", "area")]
    ok = [p for p in pool_run.points if p["status"] == "ok"]
    assert pool_run.front and set(pool_run.front) <= {p["index"] for p in ok}

    def dominates(a, b) -> bool:
        return all(a[k] <= b[k] for k in keys) and any(a[k] < b[k] for k in keys)

    for p in ok:
        dominated = any(dominates(q, p) for q in ok)
        assert (p["index"] in pool_run.front) == (not dominated)
        assert p["pareto"] == (p["index"] in pool_run.front)


def test_pareto_front_unit() -> None:
    pts = [
        {"index": 0, "status": "ok", "energy_pj": 1.0, "area_mm2": 3.0},
        {"index": 1, "status": "ok", "energy_pj": 2.0, "area_mm2": 1.0},
        {"index": 2, "status": "ok", "energy_pj": 2.0, "area_mm2": 3.0},  # dominated by 0
        {"index": 3, "status": "failed"},
    ]
    assert pareto_front(pts, ["energy", "area"]) == [0, 1]
    assert pareto_front(pts, ["energy"]) == [0]


def test_outputs_are_written(pool_run) -> None:
    out = pool_run.out
    for name in ("points.csv", "points.json", "front.json", "report.html", "points.jsonl"):
        assert (out / name).is_file(), name
    for plot in ("energy_vs_area.png", "energy_vs_latency.png", "energy_by_level.png"):
        assert (out / plot).stat().st_size > 1000
        assert plot in (out / "report.html").read_text()
    lines = (out / "points.csv").read_text().splitlines()
    assert len(lines) == 1 + 4 and lines[0].startswith("index,id,status,pareto,glb_kib,mesh_y")
    data = json.loads((out / "points.json").read_text())
    assert data["summary"]["ok"] == 2 and data["summary"]["failed"] == 1
    assert data["summary"]["infeasible"] == 1
    front = json.loads((out / "front.json").read_text())
    assert sorted(p["index"] for p in front) == pool_run.front


def test_rerun_reuses_finished_points(pool_run, sweep_file: Path) -> None:
    again = run_sweep(load_sweep(sweep_file), pool_run.out, workers=2)
    assert again.solved_now == 0 and again.reused == 2
    assert strip_times(again.points) == strip_times(pool_run.points)


def test_lost_point_log_is_answered_by_the_layer_cache(pool_run, sweep_file, tmp_path) -> None:
    """Without points.jsonl every point runs again, but every layer comes from the cache."""
    out = tmp_path / "copy"
    out.mkdir()
    for name in ("cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"):
        if (pool_run.out / name).exists():
            (out / name).write_bytes((pool_run.out / name).read_bytes())
    again = run_sweep(load_sweep(sweep_file), out, workers=1)
    assert again.solved_now == 2
    for p in again.points:
        if p["status"] == "ok":
            assert p["cache"]["solved"] == 0 and p["cache"]["hits"] == 2
    assert strip_times(again.points) == strip_times(pool_run.points)


def test_ray_gives_the_same_results_as_the_process_pool(pool_run, sweep_file, tmp_path) -> None:
    ray = pytest.importorskip("ray")  # pinned in the test extra; real local instance, no mock
    assert not ray.is_initialized()
    result = run_sweep(load_sweep(sweep_file), tmp_path / "ray", ray=True)
    assert not ray.is_initialized()  # the sweep started its own instance and shut it down
    assert result.solved_now == 2
    assert strip_times(result.points) == strip_times(pool_run.points)
    assert result.front == pool_run.front


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]


def test_killed_sweep_resumes_without_resolving(sweep_file: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load(sweep_file.read_text())
    spec["parameters"] = {"mesh_x": [2, 4], "weights_spad_depth": [16, 32, 64]}
    spec["constraints"] = {}
    path = tmp_path / "six.yaml"
    path.write_text(yaml.safe_dump(spec))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "joule", "sweep", str(path), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    log = out / "points.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and log.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its workers, mid-run
    proc.wait()
    finished = log.read_text().count("\n")
    assert 2 <= finished < 6
    before = _rows(out / "cache.sqlite")
    again = run_sweep(load_sweep(path), out, workers=1)
    assert again.reused == finished and again.solved_now == 6 - finished
    solved = sum(p["cache"]["solved"] for p in again.points if not p.get("reused"))
    assert _rows(out / "cache.sqlite") == before + solved
    # every (layer shape, design) pair was solved exactly once over the two runs
    assert _rows(out / "cache.sqlite") == 6 * 2
    assert all(p["status"] == "ok" for p in again.points)


def test_progress_bar_only_on_a_terminal(sweep_file: Path, tmp_path: Path) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    spec = load_sweep(sweep_file)
    spec = type(spec)(**{**spec.__dict__, "grid": {"mesh_x": [2]}, "constraints": {}})
    tty = Tty()
    run_sweep(spec, tmp_path / "a", workers=1, progress_stream=tty)
    assert "sweep: 1 design points" in tty.getvalue() and "1/1" in tty.getvalue()
    piped = io.StringIO()
    run_sweep(spec, tmp_path / "b", workers=1, progress_stream=piped)
    assert piped.getvalue() == ""


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"template": "eyeriss-template", "parameters": {"mesh_x": [2]}}, "'networks' is missing"),
        (
            {"template": "t", "parameters": {"a": [1]}, "networks": ["x"], "objectives": ["fun"]},
            "unknown objective",
        ),
        (
            {"template": "t", "parameters": {"a": [1]}, "networks": ["x"], "bogus": 1},
            "unknown key",
        ),
        (
            {"template": "t", "parameters": {"a": [1]}, "networks": ["x"], "constraints": {"x": 1}},
            "unknown constraint",
        ),
    ],
)
def test_bad_sweep_files_are_errors(tmp_path: Path, capsys, doc, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SweepError, match=message):
        load_sweep(path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    assert message.split("'")[0].strip() in capsys.readouterr().err


def test_pruning_by_bounds_keeps_the_front(sweep_file: Path, tmp_path: Path) -> None:
    """Deep scratchpads cost more per access and more area: their compulsory energy and
    area already lose to the shallow design, so they are skipped; the front is the same."""
    spec = load_sweep(sweep_file)
    grid = {"mesh_x": [2], "weights_spad_depth": [16, 512], "psum_spad_depth": [16, 256]}
    spec = type(spec)(**{**spec.__dict__, "grid": grid, "constraints": {}})
    full = run_sweep(spec, tmp_path / "full", workers=2)
    pruned = run_sweep(type(spec)(**{**spec.__dict__, "prune": True}), tmp_path / "pruned")
    assert pruned.pruned >= 1
    assert pruned.pruned_layer_solves == 2 * pruned.pruned  # two distinct shapes per point
    assert pruned.solved_now == 4 - pruned.pruned
    assert pruned.front == full.front
    by_index = {p["index"]: p for p in full.points}
    for p in pruned.points:
        if p["status"] == "pruned":
            assert p["reason"].startswith("dominated by #")
            # the bound is a bound: the full run's mapping of that point is not below it
            assert by_index[p["index"]]["energy_pj"] >= p["bound"]["energy_pj"] * (1 - 1e-9)
            assert not by_index[p["index"]]["pareto"]
        else:
            assert strip_times([p])[0]["energy_pj"] == by_index[p["index"]]["energy_pj"]
    summary = json.loads((tmp_path / "pruned" / "points.json").read_text())["summary"]
    assert summary["pruned"] == pruned.pruned
    # resumed: the finished points come from the log and prune the same points again
    again = run_sweep(type(spec)(**{**spec.__dict__, "prune": True}), tmp_path / "pruned")
    assert again.solved_now == 0 and again.pruned == pruned.pruned
    assert again.front == full.front
    assert "no Pareto point is lost" in (tmp_path / "pruned" / "report.html").read_text()
