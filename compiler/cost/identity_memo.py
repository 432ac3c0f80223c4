"""Memoise a function of a layer and a target by object identity.

Nests and targets hash slowly (hashing a nest costs more than scoring a mapping) and
are never mutated, while a search asks the same question of one pair thousands of
times. The table keeps the arguments, so an id is never reused while its entry lives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

R = TypeVar("R")


def by_identity(maxsize: int) -> Callable[[Callable[..., R]], Callable[..., R]]:
    def wrap(fn: Callable[..., R]) -> Callable[..., R]:
        table: dict[tuple[int, ...], tuple[tuple[Any, ...], R]] = {}

        @functools.wraps(fn)
        def call(*args: Any) -> R:
            key = tuple(id(a) for a in args)
            hit = table.get(key)
            if hit is not None and all(a is b for a, b in zip(hit[0], args, strict=True)):
                return hit[1]
            if len(table) >= maxsize:
                table.clear()
            value = fn(*args)
            table[key] = (args, value)
            return value

        return call

    return wrap
