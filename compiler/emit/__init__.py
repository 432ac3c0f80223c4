"""Emitting a schedule for other tools: the scheduled TVM module (verified) and Timeloop YAML.

``emit_tvm`` imports TVM; ``emit_timeloop`` does not. Both are imported on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.emit.timeloop_yaml import emit_timeloop
    from compiler.emit.tvm_module import emit_tvm


def __getattr__(name: str) -> Any:
    if name == "emit_tvm":
        from compiler.emit.tvm_module import emit_tvm

        return emit_tvm
    if name == "emit_timeloop":
        from compiler.emit.timeloop_yaml import emit_timeloop

        return emit_timeloop
    raise AttributeError(f"module 'compiler.emit' has no attribute {name!r}")


__all__ = ["emit_timeloop", "emit_tvm"]
