"""Bits per tensor: a target at another precision (issue 17).

A precision gives the bits of a weight, an input activation, an output activation
and a partial sum. Applied to a target it sets each level's ``tensor_bits``
(outputs are partial sums in the levels whose words are wider than the target's,
such as eyeriss's 16-bit psum scratchpad, and final values elsewhere), so that

* capacities count bits: a tile of ``n`` values of ``b`` bits takes ``n x b`` of a
  level's ``capacity_words x word_bits`` (values pack densely);
* an access moves one block of ``block_bits`` (the level's width) holding
  ``block // b`` values: a value's energy is the word's times
  ``(block // word_bits) / (block // b)`` (or ``ceil(b / block)`` blocks when wider);
* the MAC's energy follows the multiplier (product of the operand widths) and the
  adder (accumulator width) with the split of :mod:`joule.hardware.components`
  (Aladdin via Accelergy, calibrated on the eyeriss_like ERT; Horowitz, ISSCC 2014,
  45 nm, gives the same shape: 8-bit multiply 0.2 pJ, 32-bit 3.1 pJ; 8-bit add
  0.03 pJ, 32-bit 0.1 pJ).

At the target's own widths nothing changes: :func:`with_precision` returns the
target itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from joule.errors import OptionError
from joule.targets.spec import Target

_SPEC = re.compile(r"w(\d+)a(\d+)(?:o(\d+))?(?:p(\d+))?")
SPEC_HINT = (
    "give wWaA[oO][pP] (bits of weights, input activations, optionally output activations "
    "and partial sums), e.g. w8a8, w4a8, w4a4p16, or a YAML file with 'default:' and "
    "'layers: {ONNX_NODE: SPEC}'"
)


@dataclass(frozen=True)
class Precision:
    weight: int
    input: int
    output: int | None = None  # None: as the inputs (activations)
    psum: int | None = None  # None: the target's own accumulator width

    @classmethod
    def parse(cls, text: str) -> Precision:
        match = _SPEC.fullmatch(text.strip().lower())
        if not match or any(g is not None and not 1 <= int(g) <= 64 for g in match.groups()):
            raise OptionError(f"precision {text!r} is not understood", hint=SPEC_HINT)
        w, a, o, p = (None if g is None else int(g) for g in match.groups())
        return cls(weight=w, input=a, output=o, psum=p)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        out = f"w{self.weight}a{self.input}"
        if self.output is not None:
            out += f"o{self.output}"
        if self.psum is not None:
            out += f"p{self.psum}"
        return out


@dataclass(frozen=True)
class PrecisionPlan:
    """A precision for every layer: a default and overrides by layer (ONNX node) name."""

    default: Precision | None = None
    layers: tuple[tuple[str, Precision], ...] = ()

    def for_layer(self, name: str) -> Precision | None:
        return dict(self.layers).get(name, self.default)

    @classmethod
    def parse(cls, spec: str | Path) -> PrecisionPlan:
        """``w4a8`` for every layer, or a YAML file ``{default: SPEC, layers: {NAME: SPEC}}``."""
        path = Path(spec)
        if path.suffix.lower() not in (".yaml", ".yml", ".json"):
            return cls(Precision.parse(str(spec)))
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise OptionError(f"cannot read the precision file: {exc}", where=str(path)) from None
        if not isinstance(data, dict) or not set(data) <= {"default", "layers"}:
            raise OptionError("a precision file has 'default:' and 'layers:'", where=str(path))
        default = Precision.parse(str(data["default"])) if data.get("default") else None
        layers = data.get("layers") or {}
        if not isinstance(layers, dict):
            raise OptionError("'layers:' maps layer names to precisions", where=str(path))
        return cls(default, tuple((str(k), Precision.parse(str(v))) for k, v in layers.items()))


def native_widths(target: Target) -> dict[str, int]:
    """The target's own widths: its word for weights and activations; for partial sums
    the widest word a level keeping outputs has (eyeriss's psum scratchpad, 16)."""
    psum = max(lvl.word_bits for lvl in target.levels if "output" in lvl.keeps)
    return {"weight": target.word_bits, "input": target.word_bits, "psum": psum}


def with_precision(target: Target, precision: Precision | None, *, rename: bool = True) -> Target:
    """``target`` with ``precision``'s bits per tensor (itself where nothing changes);
    ``rename``: a new name and content hash (``eyeriss@w4a8``), which results are cached by."""
    if precision is None:
        return target
    native = native_widths(target)
    output = precision.output if precision.output is not None else precision.input
    psum = precision.psum if precision.psum is not None else native["psum"]
    levels = []
    for lvl in target.levels:
        # A level whose words are wider than the target's holds partial sums.
        bits = {
            "weight": precision.weight,
            "input": precision.input,
            "output": output if lvl.word_bits == target.word_bits else psum,
        }
        differs = tuple(
            (role, bits[role]) for role in sorted(lvl.keeps) if bits[role] != lvl.word_bits
        )
        levels.append(replace(lvl, tensor_bits=differs))  # type: ignore[arg-type]
    mac = target.mac_energy_pj * _mac_ratio(
        (native["weight"], native["input"], native["psum"]),
        (precision.weight, precision.input, psum),
    )
    if all(not lvl.tensor_bits for lvl in levels) and mac == target.mac_energy_pj:
        return target
    changed = replace(target, levels=tuple(levels), mac_energy_pj=mac)
    if not rename:
        return changed
    digest = hashlib.sha256(f"{target.content_hash}:{precision.label}:{psum}".encode()).hexdigest()
    return replace(changed, name=f"{target.name}@{precision.label}", content_hash=digest)


def _mac_ratio(native: tuple[int, int, int], bits: tuple[int, int, int]) -> float:
    """MAC energy at ``bits`` over the native's: multiplier ~ w x a, adder ~ accumulator."""
    from joule.hardware.components import MAC_ADD_16B_PJ, MAC_MUL_8X8_PJ

    def energy(w: int, a: int, acc: int) -> float:
        return MAC_MUL_8X8_PJ * (w * a) / 64 + MAC_ADD_16B_PJ * acc / 16

    return energy(*bits) / energy(*native)
