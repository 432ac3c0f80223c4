"""Find, read and check accelerator target files.

``load_target("eyeriss")`` reads the bundled ``targets/eyeriss.yaml``; any other
argument that names a file (``my/chip.yaml``) is read from there. The result is
cached by path and sha256 of the bytes: the driver asks for the target once per
layer, and an edited file is picked up on the next call.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from joule.errors import TargetError
from joule.targets.schema import build_target
from joule.targets.spec import Target
from joule.targets.yaml_doc import parse_yaml

BUNDLED_DIR = Path(__file__).resolve().parent
_SUFFIXES = (".yaml", ".yml")
_cache: dict[str, tuple[str, Target]] = {}


def bundled_targets() -> list[str]:
    """Names of the targets shipped with Joule, sorted."""
    return sorted(p.stem for p in BUNDLED_DIR.glob("*.yaml"))


def target_path(name_or_path: str | os.PathLike[str]) -> Path:
    """The file a target argument refers to: a bundled name first, else a path."""
    text = os.fspath(name_or_path)
    bundled = BUNDLED_DIR / f"{text}.yaml"
    looks_like_path = os.sep in text or "/" in text or text.endswith(_SUFFIXES)
    if not looks_like_path and bundled.is_file():
        return bundled
    path = Path(text)
    if path.is_file():
        return path
    if looks_like_path:
        raise TargetError(
            f"target file {text} does not exist",
            where=text,
            hint="check the path, or use a bundled target: " + ", ".join(bundled_targets()),
        )
    raise TargetError(
        f"unknown target {text!r}",
        where=f"target argument {text!r}",
        hint="use a bundled target (" + ", ".join(bundled_targets()) + ") or a path to a YAML file",
    )


def load_target(name_or_path: str | os.PathLike[str]) -> Target:
    """Load and validate a target; any problem with the file is one TargetError."""
    path = target_path(name_or_path)
    shown = str(path) if path.parent != BUNDLED_DIR else f"targets/{path.name}"
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise TargetError(
            f"cannot read target file: {err.strerror}", where=str(path), hint="check the path"
        ) from None
    digest = hashlib.sha256(raw).hexdigest()
    key = str(path.resolve())
    cached = _cache.get(key)
    if cached is not None and cached[0] == digest:
        return cached[1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TargetError(
            f"target file is not UTF-8 text (byte {err.start})",
            where=shown,
            hint="save the file as UTF-8 YAML",
        ) from None
    target = build_target(parse_yaml(text, shown), source_file=key, content_hash=digest)
    _cache[key] = (digest, target)
    return target
