"""Affine index expressions: how a loop nest's dims address one tensor axis."""

from __future__ import annotations

import re
from dataclasses import dataclass

from joule.errors import IRParseError

_TERM = re.compile(r"^(?:(-?\d+)\s*\*\s*)?([A-Za-z_][A-Za-z0-9_]*)$|^(-?\d+)$")


@dataclass(frozen=True)
class AffineExpr:
    """``sum(coeff * dim) + offset``; terms keep their order, coefficients are non-zero."""

    terms: tuple[tuple[str, int], ...]
    offset: int = 0

    @classmethod
    def of(cls, coeffs: dict[str, int], offset: int = 0) -> AffineExpr:
        return cls(tuple((d, int(c)) for d, c in coeffs.items() if c != 0), int(offset))

    @classmethod
    def dim(cls, name: str) -> AffineExpr:
        return cls(((name, 1),), 0)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.terms)

    def coeff(self, dim: str) -> int:
        return dict(self.terms).get(dim, 0)

    def evaluate(self, point: dict[str, int]) -> int:
        return sum(c * point[d] for d, c in self.terms) + self.offset

    def __str__(self) -> str:
        parts: list[str] = []
        for d, c in self.terms:
            mag = abs(c)
            text = d if mag == 1 else f"{mag}*{d}"
            if not parts:
                parts.append(text if c > 0 else f"-{text}")
            else:
                parts.append(f"+ {text}" if c > 0 else f"- {text}")
        if self.offset or not parts:
            if not parts:
                parts.append(str(self.offset))
            else:
                parts.append(f"+ {self.offset}" if self.offset > 0 else f"- {-self.offset}")
        return " ".join(parts)

    @classmethod
    def parse(cls, text: str) -> AffineExpr:
        """Parse the form printed by ``str``: ``2*P + R - 3``."""
        src = text.strip()
        if not src:
            raise IRParseError("empty index expression", hint="write e.g. 2*P + R - 3")
        tokens = re.split(r"\s*([+-])\s*", src)
        sign = 1
        coeffs: dict[str, int] = {}
        offset = 0
        if tokens[0] == "":
            tokens = tokens[1:]
        else:
            tokens = ["+", *tokens]
        for i in range(0, len(tokens), 2):
            sign = -1 if tokens[i] == "-" else 1
            term = tokens[i + 1] if i + 1 < len(tokens) else ""
            match = _TERM.match(term)
            if not match:
                raise IRParseError(
                    f"cannot read index term {term!r} in {text!r}",
                    hint="terms are DIM, COEFF*DIM or an integer",
                )
            if match.group(3) is not None:
                offset += sign * int(match.group(3))
            else:
                coeff = int(match.group(1)) if match.group(1) else 1
                name = match.group(2)
                coeffs[name] = coeffs.get(name, 0) + sign * coeff
        return cls.of(coeffs, offset)
