"""Mixed-precision search: bits per layer that minimise energy within an accuracy budget.

The energy comes from a callback, ``energy_of(bits) -> float`` with ``bits`` a dict
layer -> (weight bits, activation bits) (layer names as in :func:`layer_names`, the
names Joule's schedule reports), so Joule's certified energies plug in unchanged.
Accuracy is measured, never estimated: each candidate is quantised, run in
onnxruntime and scored on every seed.

Greedy descent from the baseline (uniform 8-bit by default): at each step every single
move (one layer's weight or activation width down to the next width in ``widths``) is
scored; among the moves that lower the energy and keep the mean validation accuracy
within ``max_drop`` points of the baseline's, the one with the lowest energy is taken
(ties: higher accuracy). It stops when no move qualifies. The search selects on the
``val`` split (never trained on, never used for the reported numbers); the result's
accuracy is then measured on the held-out ``test`` split, next to the baseline's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from joule.accuracy.measure import accuracy, study
from joule.accuracy.net import DEFAULT_TRAINING, LAYER_NAMES, TrainSettings
from joule.accuracy.quantize import QuantConfig

BitsPerLayer = dict[str, tuple[int, int]]
EnergyOf = Callable[[Mapping[str, tuple[int, int]]], float]


@dataclass
class SearchResult:
    bits: BitsPerLayer  # layer -> (weight bits, activation bits)
    config: QuantConfig
    energy: float
    baseline_energy: float
    val_accuracy: float  # mean over seeds, percent
    baseline_val_accuracy: float
    test: dict[str, Any]  # study() row of the result on the test split
    baseline_test: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)  # the accepted moves
    evaluations: int = 0  # configurations whose accuracy was measured

    @property
    def energy_ratio(self) -> float:
        """Baseline energy / result energy (>1: the search saved energy)."""
        return self.baseline_energy / self.energy


def search(
    energy_of: EnergyOf,
    max_drop: float = 1.0,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    widths: Sequence[int] = (8, 7, 6, 5, 4, 3, 2),
    baseline: tuple[int, int] = (8, 8),
    granularity: str = "channel",
    calibration: str = "mse",
    settings: TrainSettings = DEFAULT_TRAINING,
) -> SearchResult:
    """Bits per layer minimising ``energy_of`` with mean val accuracy >= baseline - max_drop."""
    ladder = sorted(set(widths), reverse=True)
    seeds = list(seeds)
    measured: dict[tuple, float] = {}

    def config_of(bits: Mapping[str, tuple[int, int]]) -> QuantConfig:
        return QuantConfig.mixed(dict(bits), granularity, calibration)

    def val_accuracy(bits: Mapping[str, tuple[int, int]]) -> float:
        key = tuple(bits[k] for k in LAYER_NAMES)
        if key not in measured:
            config = config_of(bits)
            values = [accuracy(config, s, settings, part="val") for s in seeds]
            measured[key] = sum(values) / len(values)
        return measured[key]

    start: BitsPerLayer = {k: baseline for k in LAYER_NAMES}
    base_energy = float(energy_of(dict(start)))
    base_acc = val_accuracy(start)
    floor = base_acc - max_drop
    bits, energy, acc = dict(start), base_energy, base_acc
    steps = []
    while True:
        best = None
        for layer in LAYER_NAMES:
            for which in (0, 1):
                current = bits[layer][which]
                lower = [w for w in ladder if w < current]
                if not lower:
                    continue
                pair = list(bits[layer])
                pair[which] = lower[0]
                trial = {**bits, layer: (pair[0], pair[1])}
                e = float(energy_of(dict(trial)))
                if e >= energy:
                    continue
                a = val_accuracy(trial)
                if a < floor:
                    continue
                if best is None or (e, -a) < (best[0], -best[1]):
                    best = (e, a, trial, layer, "weights" if which == 0 else "activations")
        if best is None:
            break
        energy, acc, bits = best[0], best[1], best[2]
        steps.append(
            {"layer": best[3], "tensor": best[4], "bits": dict(bits), "energy": energy,
             "val_accuracy": acc}
        )  # fmt: skip
    result_config = config_of(bits)
    base_config = config_of(start)
    test_rows = study([result_config, base_config], seeds, settings, part="test")
    return SearchResult(
        bits=bits,
        config=result_config,
        energy=energy,
        baseline_energy=base_energy,
        val_accuracy=acc,
        baseline_val_accuracy=base_acc,
        test=test_rows[0],
        baseline_test=test_rows[1],
        steps=steps,
        evaluations=len(measured),
    )


def toy_energy(bits: Mapping[str, tuple[int, int]]) -> float:
    """A stand-in energy for tests and examples, NOT Joule's: per layer, MACs x weight bits x
    activation bits (a multiplier's energy grows about with the product of its widths) plus
    weight count x weight bits (weight storage traffic). Replace with Joule's energies."""
    from joule.accuracy.measure import layer_shapes

    shapes = layer_shapes()
    return float(
        sum(shapes[k]["macs"] * w * a + shapes[k]["weights"] * w for k, (w, a) in bits.items())
    )
