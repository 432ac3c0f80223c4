"""Runs Joule's passes in order, with timing and print-after (as TVM's PassContext does)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TextIO

from joule.errors import JouleError
from joule.pipeline import MappingModule


class ModulePass(Protocol):
    name: str

    def apply(self, module: MappingModule) -> MappingModule: ...


@dataclass
class PassTiming:
    name: str
    seconds: float


@dataclass
class PassManager:
    passes: Sequence[ModulePass]
    print_after: frozenset[str] = frozenset()
    out: TextIO = field(default_factory=lambda: sys.stderr)
    timings: list[PassTiming] = field(default_factory=list)
    before_pass: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        names = {p.name for p in self.passes}
        unknown = set(self.print_after) - names
        if unknown:
            raise JouleError(
                f"--print-after names unknown passes {sorted(unknown)}",
                hint=f"the pipeline's passes are: {', '.join(p.name for p in self.passes)}",
            )

    def run(self, module: MappingModule) -> MappingModule:
        for p in self.passes:
            if self.before_pass is not None:
                self.before_pass(p.name)
            start = time.perf_counter()
            module = p.apply(module)
            self.timings.append(PassTiming(p.name, time.perf_counter() - start))
            if p.name in self.print_after:
                print(f"// ----- IR after {p.name} -----", file=self.out)
                print(module.text(), file=self.out)
        return module
