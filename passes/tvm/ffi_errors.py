"""Let Joule's errors cross TVM's FFI with their class, what, where and hint intact.

A pass runs inside TVM's C++ pass manager: an exception raised in it comes
back to Python rebuilt from its class name and message, by default as a bare
RuntimeError. Registering each JouleError class (through a subclass that
parses the message back) keeps ``except MappingError`` and the CLI's exit
status 2 working for errors met while TVM runs Joule's pass.
"""

from __future__ import annotations

import tvm_ffi
from joule import errors

_CLASSES = (
    errors.JouleError,
    errors.ModelError,
    errors.TargetError,
    errors.MappingError,
    errors.IRParseError,
    errors.SolverError,
)


def _from_message(self: errors.JouleError, message: str = "") -> None:
    what, where, hint = message, "", ""
    lines = message.splitlines()
    if lines and lines[0].startswith("error: "):
        what = lines[0].removeprefix("error: ")
        for line in lines[1:]:
            text = line.strip()
            if text.startswith("where: "):
                where = text.removeprefix("where: ")
            elif text.startswith("what to do: "):
                hint = text.removeprefix("what to do: ")
    errors.JouleError.__init__(self, what, where=where, hint=hint)


def register() -> None:
    """Idempotent: TVM keeps one class per name."""
    for cls in _CLASSES:
        rebuilt = type(cls.__name__, (cls,), {"__init__": _from_message, "__module__": __name__})
        tvm_ffi.register_error(cls.__name__, cls)  # raising side: the class's FFI name
        tvm_ffi.register_error(cls.__name__, rebuilt)  # receiving side: that name's class


register()
