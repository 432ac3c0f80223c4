"""Output files that are whole or absent: written to a temporary name, then renamed."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from joule.errors import JouleError


def prepare_dir(path: Path) -> Path:
    """Create the output directory, or say why it cannot be used."""
    if path.exists() and not path.is_dir():
        raise JouleError(
            f"the output path {path} is a file, not a directory",
            where=f"--out {path}",
            hint="give --out a directory (it is created when missing)",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".joule-probe-", delete=True)
        probe.close()
    except OSError as exc:
        raise JouleError(
            f"cannot write to the output directory {path} ({exc.strerror})",
            where=f"--out {path}",
            hint="choose a writable --out directory",
        ) from None
    return path


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` so that ``path`` never holds a half-written file."""
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
