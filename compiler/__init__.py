"""Joule: map neural networks onto energy-efficient DNN accelerators.

The public API. Heavy parts (TVM, OR-Tools) are imported on first use.
"""

from typing import Any

from joule.errors import JouleError, MappingError, ModelError, TargetError
from joule.mapping import LevelLoops, Loop, Mapping

__all__ = [
    "JouleError",
    "LevelLoops",
    "Loop",
    "Mapping",
    "MappingError",
    "ModelError",
    "TargetError",
    "compile_model",
]


def __getattr__(name: str) -> Any:
    """``compile_model`` on first use, so ``import compiler`` stays light."""
    if name == "compile_model":
        from joule.driver import compile_model

        return compile_model
    raise AttributeError(name)
