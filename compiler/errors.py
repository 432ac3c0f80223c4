"""Errors a user can meet.

Every problem caused by the user's input (a model, a target file, a mapping, a
flag) is a :class:`JouleError`: it says what is wrong, where, and what to do.
The CLI prints it and exits with status 2; anything else is a bug in Joule.
"""

from __future__ import annotations


class JouleError(Exception):
    """A problem with the user's input, explained for the user."""

    def __init__(self, what: str, *, where: str = "", hint: str = "") -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.message())

    def message(self) -> str:
        lines = [f"error: {self.what}"]
        if self.where:
            lines.append(f"  where: {self.where}")
        if self.hint:
            lines.append(f"  what to do: {self.hint}")
        return "\n".join(lines)

    def __reduce__(self) -> tuple:
        # A solver worker's error is pickled back to the parent process. Rebuild it
        # from its parts: the default rebuilds it from the formatted message, which
        # then reads "error: error: ..." with its where and hint twice.
        return (_rebuild, (type(self), self.what, self.where, self.hint), self.__dict__)


def _rebuild(cls: type[JouleError], what: str, where: str, hint: str) -> JouleError:
    return cls(what, where=where, hint=hint)


class ModelError(JouleError):
    """The ONNX model cannot be read, checked, imported or lowered."""


class TargetError(JouleError):
    """An accelerator description is malformed or cannot hold a layer."""


class MappingError(JouleError):
    """A mapping is malformed or violates the layer or the target."""


class IRParseError(JouleError):
    """Loop-nest IR text that does not parse."""


class SolverError(JouleError):
    """The mapper could not produce a mapping."""


class OptionError(JouleError):
    """A numeric option or argument is out of its range (``--workers 0``, ``time_limit=-1``)."""
