"""Joule ships as one import namespace, ``joule``: a wheel built from the checkout holds
nothing else at the top level of site-packages, every package folder is in it, and
the public API imports from that installed copy (not from the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"compiler": "joule", "passes": "joule/passes", "targets": "joule/targets"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", *FOLDERS):
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy
        copy(ROOT / name, source / name)  # type: ignore[operator]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(work), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next(work.glob("joule-*.whl"))


def test_the_wheel_puts_only_joule_into_site_packages(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"joule", wheel.name.split("-py")[0] + ".dist-info"}


def test_every_package_folder_and_target_file_ships(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, installed in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            assert f"{installed}/{init.relative_to(ROOT / folder).as_posix()}" in names
        for yaml in (ROOT / folder).glob("*.yaml"):
            assert f"{installed}/{yaml.name}" in names


def test_the_public_api_imports_from_an_installed_copy(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    code = (
        "import joule, sys\n"
        f"assert joule.__file__.startswith({str(target)!r}), joule.__file__\n"
        "assert callable(joule.compile_model) and joule.Schedule and joule.JouleError\n"
        "assert joule.load_target('eyeriss').pes == 168\n"
        "assert not any(m in sys.modules for m in ('compiler', 'passes', 'targets'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path, env=env)
