"""Lowering: a legalized Relax module -> Joule's loop-nest IR (a Network).

``lower_model`` runs the whole way from an ONNX file, ModelProto or bundled
model name; ``lower_module`` starts from ``joule.frontend.load_onnx``'s
result; ``build_network`` from plain records (no TVM).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

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
    from joule.models import BUNDLED_MODELS, bundled_model

    name = None
    if isinstance(source, str) and not Path(source).exists():
        if source in BUNDLED_MODELS or not Path(source).suffix:
            name, source = source, bundled_model(source)  # unknown names: ModelError
    mod, info = load_onnx(source, batch=batch, dims=dims)
    return lower_module(mod, info, model=name or info.model)


__all__ = ["ModuleDescription", "Network", "build_network", "lower_model", "lower_module"]
