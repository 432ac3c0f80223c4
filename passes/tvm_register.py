"""Register the ``joule`` Relax pipeline without importing TVM (``import passes`` stays fast).

Importing TVM costs about a second, and most users of ``passes`` (the mapper,
the CLI's ``joule targets``) never touch it. So: when ``tvm.relax.pipeline``
is already loaded the pipeline is registered at once; otherwise an import
hook registers it right after TVM loads that module. Either way the entry is
a thin function that imports the pass only when the pipeline is built.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

PIPELINE_NAME = "joule"
_WATCHED = "tvm.relax.pipeline"


def joule_pipeline(target: Any = "eyeriss", **options: Any) -> Any:
    """The ``joule`` pipeline for ``target`` (see ``passes.tvm_pipeline``); imports TVM."""
    from passes.tvm_pipeline import joule_pipeline as build

    return build(target, **options)


def _add(module: ModuleType) -> None:
    pipelines = getattr(module, "PIPELINE_MAP", None)
    if isinstance(pipelines, dict):
        pipelines.setdefault(PIPELINE_NAME, joule_pipeline)


class _RegisterAfterLoad:
    """A meta path finder + loader (duck-typed: ``importlib.abc`` costs 5 ms to import).

    It finds ``tvm.relax.pipeline`` through the other finders and registers after exec.
    """

    def __init__(self) -> None:
        self._loader: Any = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _WATCHED or self._loader is not None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                self._loader = spec.loader
                spec.loader = self
                return spec
        return None

    def create_module(self, spec: Any) -> ModuleType | None:
        assert self._loader is not None
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        assert self._loader is not None
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader  # hand back: reload works
        _add(module)
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def install() -> None:
    """Register now if TVM's pipeline map is loaded, else when it loads (idempotent)."""
    loaded = sys.modules.get(_WATCHED)
    if loaded is not None:
        _add(loaded)
    elif not any(isinstance(f, _RegisterAfterLoad) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterLoad())
