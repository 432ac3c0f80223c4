"""Lowering: a legalized Relax module -> Joule's loop-nest IR (a Network).

``lower_model`` runs the whole way from an ONNX file, ModelProto or bundled
model name; ``lower_module`` starts from ``joule.frontend.load_onnx``'s
result; ``build_network`` from plain records (no TVM).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from joule.errors import ModelError
from joule.frontend.records import ModuleDescription
from joule.ir.network import Network
from joule.lower.build_network import build_network

if TYPE_CHECKING:
    import onnx
    import tvm
    from joule.frontend.importer import SiteInfo


def lower_module(mod: tvm.IRModule, info: SiteInfo, *, model: str | None = None) -> Network:
    """The Network of a module returned by ``load_onnx``."""
    from joule.frontend import describe_module

    return build_network(describe_module(mod, info), model=model)


def lower_model(
    source: str | Path | onnx.ModelProto,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> Network:
    """Import and lower a model: a path, a ModelProto, or a bundled model's name."""
    from joule.frontend import load_onnx

    resolved = resolve_model(source)
    bundled = isinstance(source, str) and not isinstance(resolved, Path)
    mod, info = load_onnx(resolved, batch=batch, dims=dims)
    return lower_module(mod, info, model=source if bundled else info.model)


def resolve_model(
    source: str | Path | onnx.ModelProto, *, output_dir: str | Path | None = None
) -> Path | onnx.ModelProto:
    """What a model argument names: a bundled model (its ModelProto) or an ONNX file (a Path).

    A str that is exactly a bundled model's name (``resnet18``) is that model,
    also when the working directory holds a directory of that name that is
    empty, is ``output_dir`` (the output folder of the command being run) or
    holds a ``schedule.json`` (an earlier compile's output). A file or another
    non-empty directory of that name makes it ambiguous: a ModelError that
    says how to choose (``./resnet18`` is the path). Any other str is a
    path, except a missing one without a suffix: a bundled name, else a
    ModelError listing the bundled models. A Path is always a path.
    """
    from joule.models import BUNDLED_MODELS, bundled_model

    if not isinstance(source, str):
        return source
    path = Path(source)
    if source in BUNDLED_MODELS:
        if _not_a_model(path, output_dir):
            return bundled_model(source)
        raise _ambiguous(source, path)
    if not path.exists() and not path.suffix:
        return bundled_model(source)  # not bundled: ModelError naming the bundled models
    return path


def _not_a_model(path: Path, output_dir: str | Path | None) -> bool:
    """Nothing at ``path`` that a bundled name could be mistaken for."""
    if not path.exists() and not path.is_symlink():
        return True
    if not path.is_dir():
        return False
    if output_dir is not None and path.resolve() == Path(output_dir).resolve():
        return True
    if (path / "schedule.json").is_file():
        return True  # the output folder of an earlier `joule compile`
    try:
        return not any(path.iterdir())
    except OSError:
        return False


def _ambiguous(name: str, path: Path) -> ModelError:
    if path.is_dir():
        return ModelError(
            f"{name!r} names both a bundled model and a non-empty directory here",
            where=f"MODEL {name} (directory {path.absolute()})",
            hint=f"to compile the bundled model {name}, run in another directory or rename "
            f"./{name}; to compile a model inside it, give its file, e.g. ./{name}/model.onnx",
        )
    return ModelError(
        f"{name!r} names both a bundled model and a file here",
        where=f"MODEL {name} (file {path.absolute()})",
        hint=f"write ./{name} to compile the file; to compile the bundled model {name}, "
        f"run in another directory or rename the file",
    )


__all__ = [
    "ModuleDescription",
    "Network",
    "build_network",
    "lower_model",
    "lower_module",
    "resolve_model",
]
