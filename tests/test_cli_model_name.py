"""``joule compile NAME --out NAME``: the MODEL argument is resolved before --out is created.

Issue 18: in an empty folder, ``joule compile resnet18 --out resnet18`` exited 2
with "'resnet18' is not a file", because the output folder was created first and
the bundled name then resolved to it. A bundled name now wins over an empty
directory of that name (and over the command's own --out folder or an earlier
compile's output); a file or another non-empty directory of that name is an
ambiguity the user resolves (``./resnet18`` for the path). A compile that fails
before writing anything leaves no empty --out behind.

The CLI cases run ``joule`` as a user would: a real process in a fresh working
directory, with the random mapper on 10 samples so each compile takes seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from joule.cli import main
from joule.errors import ModelError
from joule.lower import resolve_model
from joule.models import bundled_model

FAST = ["--mapper", "random", "--samples", "10", "--time-limit", "0.2", "--workers", "1"]
FAST += ["--no-cache"]


def _joule(args: list[str], cwd: Path, timeout: float = 90) -> subprocess.CompletedProcess:
    """``joule ARGS`` in ``cwd``: the installed console script, as a user runs it."""
    script = Path(sys.executable).with_name("joule")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "joule"]
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=os.environ
    )


def _schedule(folder: Path) -> dict:
    return json.loads((folder / "schedule.json").read_text())


def _names(schedule: dict) -> list[str]:
    return [layer["name"] for layer in schedule["layers"]]


def test_bundled_name_as_its_own_out_folder_compiles_and_recompiles(tmp_path: Path) -> None:
    # The command, in an empty folder: --out must not shadow the model name.
    proc = _joule(["compile", "resnet18", "--out", "resnet18", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = _schedule(tmp_path / "resnet18")
    assert first["model"] == "resnet18" and len(first["layers"]) == 21
    # Again: ./resnet18 is now a non-empty folder, but it is this run's --out.
    proc = _joule(["compile", "resnet18", "--out", "resnet18", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr
    again = _schedule(tmp_path / "resnet18")
    assert _names(again) == _names(first)


def test_a_file_named_like_a_bundled_model_is_ambiguous_and_dot_slash_picks_it(
    tmp_path: Path,
) -> None:
    # A real ONNX file called "resnet18" (the 8-layer transformer inside).
    onnx.save(bundled_model("transformer"), tmp_path / "resnet18")
    proc = _joule(["compile", "resnet18", "--out", "out", *FAST], tmp_path)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert err.startswith("error: 'resnet18' names both a bundled model and a file"), err
    assert "  where: " in err and "./resnet18" in err and "Traceback" not in err
    assert proc.stdout == ""
    assert not (tmp_path / "out").exists(), "--out created although the model was refused"
    proc = _joule(["compile", "./resnet18", "--out", "out", *FAST], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(_schedule(tmp_path / "out")["layers"]) == 8  # the file, not bundled resnet18


def test_a_non_empty_folder_named_like_a_bundled_model_is_ambiguous(tmp_path: Path) -> None:
    (tmp_path / "resnet18").mkdir()
    (tmp_path / "resnet18" / "model.onnx").write_bytes(b"")
    proc = _joule(["compile", "resnet18", "--out", "out", *FAST], tmp_path)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert err.startswith("error: 'resnet18' names both a bundled model and a non-empty"), err
    assert "  where: " in err and "  what to do: " in err and "./resnet18/" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_failed_compile_leaves_no_empty_out_folder(tmp_path: Path) -> None:
    # The target is read after --out is prepared: the folders made for it go again.
    proc = _joule(["compile", "transformer", "--out", "a/b/c", "--target", "nosuch"], tmp_path)
    assert proc.returncode == 2 and "unknown target 'nosuch'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "a").exists()


def test_a_failed_compile_keeps_an_existing_out_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine").mkdir()  # the user's folder: kept, even empty
    assert main(["compile", "transformer", "--out", "mine", "--target", "nosuch"]) == 2
    assert (tmp_path / "mine").is_dir() and not any((tmp_path / "mine").iterdir())
    (tmp_path / "parent").mkdir()  # only the folders this run made are removed
    assert main(["compile", "transformer", "--out", "parent/x/y", "--target", "nosuch"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "parent"]
    assert not any((tmp_path / "parent").iterdir())
    # An unknown model name fails before --out is made.
    assert main(["compile", "resnet19", "--out", "resnet19"]) == 2
    assert "no bundled model named 'resnet19'" in capsys.readouterr().err
    assert not (tmp_path / "resnet19").exists()


# -- the resolution rules, in this process -------------------------------------------


def _is_bundled(resolved: object, name: str) -> bool:
    return isinstance(resolved, onnx.ModelProto) and resolved.graph.name == name


def test_resolve_model_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _is_bundled(resolve_model("resnet18"), "resnet18")  # nothing of that name here
    (tmp_path / "resnet18").mkdir()
    assert _is_bundled(resolve_model("resnet18"), "resnet18")  # an empty folder
    (tmp_path / "resnet18" / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="non-empty directory") as err:
        resolve_model("resnet18")
    assert "./resnet18" in err.value.hint and "resnet18" in err.value.where
    # ... unless it is this command's --out, or an earlier compile's output folder.
    assert _is_bundled(resolve_model("resnet18", output_dir="resnet18"), "resnet18")
    assert _is_bundled(resolve_model("resnet18", output_dir=tmp_path / "resnet18"), "resnet18")
    (tmp_path / "resnet18" / "schedule.json").write_text("{}")
    assert _is_bundled(resolve_model("resnet18"), "resnet18")
    shutil.rmtree(tmp_path / "resnet18")
    (tmp_path / "resnet18").write_bytes(b"")
    with pytest.raises(ModelError, match="names both a bundled model and a file") as err:
        resolve_model("resnet18", output_dir="resnet18")
    assert "write ./resnet18 to compile the file" in err.value.hint
    # Paths stay paths; a missing name without a suffix is a bundled name or an error.
    assert resolve_model("./resnet18") == Path("resnet18")
    assert resolve_model(Path("resnet18")) == Path("resnet18")
    assert resolve_model("missing.onnx") == Path("missing.onnx")
    with pytest.raises(ModelError, match="no bundled model named 'resnet19'"):
        resolve_model("resnet19")
