"""Joule: map neural networks onto energy-efficient DNN accelerators.

The public API::

    import joule
    target = joule.load_target("eyeriss")
    schedule = joule.compile_model("model.onnx", target, time_limit=2.0)  # a joule.Schedule
    schedule.layers[0].cost.energy_pj

Errors a user can meet are :class:`JouleError` subclasses. TVM and OR-Tools
are imported on first use (``compile_model``), so ``import joule`` stays light.
"""

from typing import Any

from joule.errors import (
    IRParseError,
    JouleError,
    MappingError,
    ModelError,
    OptionError,
    SolverError,
    TargetError,
)
from joule.ir.loopnest import LoopNest
from joule.mapping import LevelLoops, Loop, Mapping
from joule.schedule import LayerSchedule, Schedule
from joule.targets import Target, bundled_targets, load_target

__all__ = [
    "IRParseError",
    "JouleError",
    "LayerSchedule",
    "LevelLoops",
    "Loop",
    "LoopNest",
    "Mapping",
    "MappingError",
    "ModelError",
    "OptionError",
    "Schedule",
    "SolverError",
    "Target",
    "TargetError",
    "bundled_targets",
    "compile_model",
    "load_target",
]


def __getattr__(name: str) -> Any:
    """``compile_model`` on first use: it brings in TVM and OR-Tools."""
    if name == "compile_model":
        from joule.driver import compile_model

        return compile_model
    raise AttributeError(f"module 'joule' has no attribute {name!r}")
