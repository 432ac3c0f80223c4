"""Joule: map neural networks onto energy-efficient DNN accelerators.

The public API. Heavy parts (TVM, OR-Tools) are imported on first use.
"""

from compiler.errors import JouleError, MappingError, ModelError, TargetError
from compiler.mapping import LevelLoops, Loop, Mapping

__all__ = [
    "JouleError",
    "LevelLoops",
    "Loop",
    "Mapping",
    "MappingError",
    "ModelError",
    "TargetError",
]
