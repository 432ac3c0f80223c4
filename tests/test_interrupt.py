"""Solver faults: a per-layer time-out keeps the best mapping and says so; Ctrl-C keeps the work.

Ctrl-C is tested on a real ``joule compile`` process: SIGINT once a layer is in
the cache must end it with status 130, no traceback, its solver workers gone,
and a ``schedule.json`` holding the layers solved so far, marked
``"complete": false``.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from joule.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_time_out_keeps_the_best_mapping_with_its_gap_and_warns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compile", "transformer", "--out", str(tmp_path), "--time-limit", "0.02"]
    assert main([*argv, "--workers", "2", "--no-cache"]) == 0
    err = capsys.readouterr().err
    schedule = json.loads((tmp_path / "schedule.json").read_text())
    assert schedule["complete"] is True
    stopped = [lay for lay in schedule["layers"] if lay["solver"]["gap"] > 0.01]
    assert stopped, "a 0.02 s budget should stop some solve early"
    for lay in stopped:
        assert lay["solver"]["status"] in ("FEASIBLE", "UNKNOWN")
        assert lay["solver"]["bound"] <= lay["solver"]["objective"]
        assert lay["energy_pj"] > 0 and lay["mapping"]
    # One summary line names how many stopped and the worst, not a line per layer.
    distinct = {lay["signature"] for lay in schedule["layers"]}
    worst = max(stopped, key=lambda lay: lay["solver"]["gap"])
    assert err.count("stopped at the time limit") == 1
    assert f"{len({lay['signature'] for lay in stopped})} of {len(distinct)} distinct" in err
    assert f"layer {worst['name']}" in err


def _rows(path: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        return conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return 0


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc to find the workers")
def test_ctrl_c_writes_the_solved_layers_marked_incomplete_and_exits_130(tmp_path: Path) -> None:
    cache = tmp_path / "c.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-m", "compiler", "compile", "resnet18", "--out", "out"]
        + ["--mapper", "random", "--samples", "3000", "--workers", "2", "--cache", str(cache)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 180
    while _rows(cache) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; kept" in err
    schedule = json.loads((tmp_path / "out" / "schedule.json").read_text())
    assert schedule["complete"] is False
    assert 0 < len(schedule["layers"]) < 21
    assert "interrupted" in schedule["warnings"][-1]
    assert all(lay["mapping"] and lay["energy_pj"] > 0 for lay in schedule["layers"])
    unique = {lay["signature"] for lay in schedule["layers"]}
    assert _rows(cache) == len(unique)  # what was solved is kept for the next run
    time.sleep(0.5)
    assert workers and not [w for w in workers if _alive(w)], "solver workers outlived Ctrl-C"
    assert not list((tmp_path / "out").glob(".*")), "temporary files left in --out"


def _die(*args: object, **kwargs: object) -> None:
    """Stands in for map_layer in a worker: the process vanishes as if OOM-killed."""
    os._exit(9)


def test_a_solver_process_that_dies_is_a_clear_error_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import joule.passes.tile

    monkeypatch.setattr(joule.passes.tile, "map_layer", _die)  # forked workers inherit the patch
    argv = ["compile", "transformer", "--out", str(tmp_path), "--no-cache", "--workers", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the solver process mapping layer @") and "Traceback" not in err
    assert "stopped abruptly" in err and "what to do:" in err


def test_an_error_raised_in_a_solver_process_reads_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A latency cap no mapping meets fails inside a worker; the parent re-raises it."""
    import traceback

    from joule import compile_model
    from joule.errors import JouleError
    from joule.ir import Network
    from joule.ir.builders import matmul

    what = "no mapping meets the latency cap"
    argv = ["compile", "transformer", "--out", str(tmp_path), "--no-cache", "--workers", "2"]
    assert main([*argv, "--time-limit", "0.1", "--max-cycles", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count(what) == 1 and err.count("error:") == err.count("what to do:") == 1
    network = Network("two", [matmul("a", m=8, n=8, k=8), matmul("b", m=4, n=8, k=16)], [])
    with pytest.raises(JouleError) as caught:
        compile_model(network, "eyeriss", time_limit=0.1, max_cycles=1, workers=2)
    assert str(caught.value).count("error:") == 1
    shown = "".join(traceback.format_exception(caught.value))  # what Python prints
    assert shown.count(what) == 1 and "RemoteTraceback" not in shown
