"""The result cache: keys, faithful round trips, corruption, crashes and concurrent compiles.

Every test uses a cache under ``tmp_path`` (and conftest points the default
location at a temporary directory), so the user's cache is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from joule import cache as cache_module
from joule.cache import ResultCache, default_cache_path, open_cache, result_key
from joule.cost import evaluate
from joule.errors import JouleError
from joule.ir.builders import conv2d, matmul
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.outcome import SearchOptions, SolverReport
from joule.schedule import JOULE_VERSION, strip_times
from joule.targets import load_target
from test_interrupt import _alive, _children, _rows

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = SearchOptions(samples=200)


def _solved(nest, target, dataflow: str = "free"):  # noqa: ANN001, ANN202 - test helper
    constraints = space_constraints(nest, target, dataflow)
    result = map_layer(nest, target, constraints, mapper="random", options=OPTIONS)
    return constraints, result


def test_hit_returns_the_stored_mapping_and_report_rescored_by_the_model(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    nest = conv2d(k=16, c=8, p=8, q=8, r=3, s=3)
    constraints, result = _solved(nest, target)
    key = result_key(nest, target, constraints, "random", OPTIONS)
    with ResultCache(tmp_path / "c.sqlite") as cache:
        assert cache.get(key, nest, target) is None and cache.misses == 1
        cache.put(key, result.mapping, result.report.to_dict())
    with ResultCache(tmp_path / "c.sqlite") as cache:  # a new process would see the same
        hit = cache.get(key, nest, target)
        assert cache.hits == 1 and len(cache) == 1
    assert hit.mapping == result.mapping
    assert hit.report == result.report.to_dict()
    assert hit.cost == evaluate(nest, target, result.mapping)


def test_stored_report_keys_are_the_solver_reports_fields() -> None:
    # A field added to SolverReport must reach the cache, or every hit would be dropped.
    assert cache_module.REPORT_KEYS == {f.name for f in dataclasses.fields(SolverReport)}


def test_key_changes_with_everything_that_decides_a_solve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    eyeriss, tpu = load_target("eyeriss"), load_target("tpu-ws")
    nest = matmul(m=16, n=32, k=64)
    free = space_constraints(nest, eyeriss, "free")
    base = result_key(nest, eyeriss, free, "cpsat", OPTIONS)
    variants = [
        result_key(matmul(m=16, n=32, k=32), eyeriss, free, "cpsat", OPTIONS),
        result_key(nest, tpu, space_constraints(nest, tpu, "free"), "cpsat", OPTIONS),
        result_key(nest, eyeriss, space_constraints(nest, eyeriss, "ws"), "cpsat", OPTIONS),
        result_key(nest, eyeriss, free, "random", OPTIONS),
        result_key(nest, eyeriss, free, "cpsat", SearchOptions(samples=200, time_limit_s=1)),
        result_key(nest, eyeriss, free, "cpsat", SearchOptions(samples=200, objective="edp")),
    ]
    monkeypatch.setattr(cache_module, "JOULE_VERSION", "999.0")
    variants.append(result_key(nest, eyeriss, free, "cpsat", OPTIONS))
    monkeypatch.setattr(cache_module, "JOULE_VERSION", JOULE_VERSION)
    monkeypatch.setattr(cache_module, "solver_code_fingerprint", lambda: "edited mapper")
    variants.append(result_key(nest, eyeriss, free, "cpsat", OPTIONS))
    assert len({base, *variants}) == len(variants) + 1


def test_fingerprint_changes_when_the_mapper_or_cost_model_is_edited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editable install keeps its version while its answers change: an edit to
    # any search or cost-model file must change every key.
    import shutil

    copies = {}
    for name, path in cache_module._solver_sources().items():
        copies[name] = tmp_path / name
        if path.is_dir():
            shutil.copytree(path, copies[name])
        else:
            shutil.copy(path, copies[name])
    monkeypatch.setattr(cache_module, "_solver_sources", lambda: copies)
    fingerprints = []
    for edited in ("passes/mapper/cpsat/solve.py", "cost/model.py", "mapping.py"):
        cache_module.solver_code_fingerprint.cache_clear()
        fingerprints.append(cache_module.solver_code_fingerprint())
        with (tmp_path / edited).open("a") as source:
            source.write("# edited\n")
    cache_module.solver_code_fingerprint.cache_clear()
    fingerprints.append(cache_module.solver_code_fingerprint())
    cache_module.solver_code_fingerprint.cache_clear()
    assert len(set(fingerprints)) == 4


def test_key_does_not_depend_on_the_string_hash_seed() -> None:
    # Constraints hold frozensets whose repr order follows PYTHONHASHSEED: two
    # processes must still agree on the key, or a warm cache never hits.
    code = (
        "from joule.cache import result_key; from joule.ir.builders import conv2d;"
        "from joule.passes.dataflow import space_constraints;"
        "from joule.passes.mapper.outcome import SearchOptions;"
        "from joule.targets import load_target; t = load_target('eyeriss');"
        "n = conv2d(k=16, c=8, p=8, q=8, r=3, s=3);"
        "print(result_key(n, t, space_constraints(n, t), 'cpsat', SearchOptions()))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1


def test_wal_journal_is_used(tmp_path: Path) -> None:
    with ResultCache(tmp_path / "c.sqlite"):
        mode = sqlite3.connect(tmp_path / "c.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"


def test_a_corrupt_file_is_moved_aside_and_rebuilt_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(os.urandom(8192))
    with ResultCache(path) as cache:
        assert cache.enabled and len(cache) == 0
        assert any("corrupt" in w and "rebuilt" in w for w in cache.warnings)
    assert (tmp_path / "c.sqlite.corrupt").exists()
    with ResultCache(path) as cache:
        assert cache.warnings == []


def test_a_damaged_page_is_detected_by_the_integrity_check(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    path = tmp_path / "c.sqlite"
    with ResultCache(path) as cache:
        for k in range(1, 40):
            nest = matmul(m=k, n=8, k=8)
            constraints, result = _solved(nest, target)
            key = result_key(nest, target, constraints, "random", OPTIONS)
            cache.put(key, result.mapping, result.report.to_dict())
    sqlite3.connect(path).execute("PRAGMA wal_checkpoint(TRUNCATE)").close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page + 8 : 3 * page] = os.urandom(page - 8)  # scribble over a b-tree page
    path.write_bytes(bytes(data))
    with ResultCache(path) as cache:
        assert any("corrupt" in w for w in cache.warnings), cache.warnings
        assert len(cache) == 0


def test_a_row_failing_its_checksum_is_dropped_and_solved_again(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    nest = matmul(m=16, n=16, k=16)
    constraints, result = _solved(nest, target)
    key = result_key(nest, target, constraints, "random", OPTIONS)
    path = tmp_path / "c.sqlite"
    with ResultCache(path) as cache:
        cache.put(key, result.mapping, result.report.to_dict())
    conn = sqlite3.connect(path)
    payload = conn.execute("SELECT payload FROM results").fetchone()[0]
    conn.execute("UPDATE results SET payload = ?", (payload + " ",))
    conn.commit()
    conn.close()
    with ResultCache(path) as cache:
        assert cache.get(key, nest, target) is None
        assert cache.misses == 1 and len(cache) == 0
        assert any("invalid result cache entry" in w for w in cache.warnings)


def test_a_row_that_does_not_fit_the_layer_is_dropped_never_trusted(tmp_path: Path) -> None:
    target = load_target("eyeriss")
    nest = matmul(m=16, n=16, k=16)
    constraints, result = _solved(nest, target)
    with ResultCache(tmp_path / "c.sqlite") as cache:
        cache.put("k", result.mapping, result.report.to_dict())
        assert cache.get("k", matmul(m=16, n=16, k=32), target) is None  # factors do not match
        assert len(cache) == 0 and cache.warnings


def test_an_explicit_unusable_path_is_an_error_the_default_one_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(JouleError, match="cannot use the result cache"):
        ResultCache(tmp_path / "file" / "c.sqlite")
    monkeypatch.setenv("JOULE_CACHE_DIR", str(tmp_path / "file" / "joule"))
    cache = open_cache(True)
    assert cache is not None and not cache.enabled
    assert "not caching" in cache.warnings[0]
    assert cache.get("k", matmul(m=2, n=2, k=2), load_target("eyeriss")) is None


def test_default_location_follows_joule_cache_dir_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOULE_CACHE_DIR", str(tmp_path / "j"))
    assert default_cache_path() == tmp_path / "j" / "results.sqlite"
    monkeypatch.delenv("JOULE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_path() == tmp_path / "x" / "joule" / "results.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert default_cache_path() == tmp_path / "h" / ".cache" / "joule" / "results.sqlite"


def test_a_directory_given_as_cache_holds_results_sqlite(tmp_path: Path) -> None:
    with ResultCache(tmp_path) as cache:
        assert cache.path == tmp_path / "results.sqlite"


_WRITER = """
import sys
from joule.cache import ResultCache, result_key
from joule.ir.builders import matmul
from joule.passes.dataflow import space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.outcome import SearchOptions, SolverReport
from joule.targets import load_target
t = load_target("eyeriss")
options = SearchOptions(samples=20)
n = matmul(m=8, n=8, k=8)
c = space_constraints(n, t)
r = map_layer(n, t, c, mapper="random", options=options)
cache = ResultCache(sys.argv[1])
print("ready", flush=True)
k = 0
while True:
    cache.put(f"key{k}", r.mapping, r.report.to_dict())
    k += 1
"""


def test_sigkill_mid_write_leaves_a_consistent_readable_cache(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)  # thousands of committed stores, one in flight
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    target = load_target("eyeriss")
    nest = matmul(m=8, n=8, k=8)
    with ResultCache(path) as cache:
        assert cache.warnings == []
        rows = len(cache)
        assert rows > 10
        assert all(cache.get(f"key{k}", nest, target) is not None for k in range(rows))
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _compile(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "compiler", "compile", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_two_compiles_share_a_cache_and_a_sigkilled_one_harms_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "shared.sqlite"
    common = ["--mapper", "random", "--samples", "600", "--workers", "1", "--cache", str(cache)]
    survivor = _compile(["transformer", "--out", "a", *common], tmp_path)
    victim = _compile(["resnet18", "--out", "b", *common], tmp_path)
    deadline = time.monotonic() + 180
    workers: list[int] = []
    # Kill the victim mid-run: once the cache is being written and it has solver workers.
    while time.monotonic() < deadline:
        workers = _children(victim.pid)
        if workers and _rows(cache) >= 1:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    out, err = survivor.communicate(timeout=300)
    assert survivor.returncode == 0, err
    assert workers and not [w for w in workers if _alive(w)], "workers outlived a SIGKILL"
    assert sqlite3.connect(cache).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rerun = _compile(["transformer", "--out", "c", *common], tmp_path)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "layers reused" in err and "warning: result cache" not in err
    first = json.loads((tmp_path / "a" / "schedule.json").read_text())
    again = json.loads((tmp_path / "c" / "schedule.json").read_text())
    assert strip_times(first) == strip_times(again)


def _open_at_once(path: str, barrier) -> str:  # noqa: ANN001 - a multiprocessing barrier
    barrier.wait()
    try:
        with ResultCache(path):
            return "ok"
    except Exception as err:  # noqa: BLE001 - reported back to the test
        return repr(err)


def test_processes_opening_a_new_cache_at_once_all_get_it(tmp_path: Path) -> None:
    """A sweep's workers open OUT/cache.sqlite together: switching a new file to WAL can
    find it locked without sqlite waiting, which once killed a design point."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    for attempt in range(3):
        path = str(tmp_path / f"new{attempt}.sqlite")
        with ctx.Manager() as manager:
            barrier = manager.Barrier(6)
            with ctx.Pool(6) as pool:
                outcomes = pool.starmap(_open_at_once, [(path, barrier)] * 6)
        assert outcomes == ["ok"] * 6
