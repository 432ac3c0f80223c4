"""Dataflows as constraints on the mapspace: where each dim may loop on a target.

A *PE level* is a storage level with one instance per PE. The dataflows
(Chen, Emer, Sze, ISCA 2016), for a tensor X's stationarity: every temporal loop
at a PE level runs over dims irrelevant to X, so each PE holds one word of X
while the rest streams past.

* ``ws`` / ``os`` / ``is``: weight / output / input stationary, as above.
* ``os_a`` / ``os_b`` / ``os_c``: the paper's three output-stationary variants,
  ``os`` plus a limit on what the array parallelises (ISCA'16 Fig. 6):
  OS_A = SOC-MOP, one output channel and many output pixels (ShiDianNao):
  only P, Q and N across PEs; OS_B = MOC-MOP, many channels and many pixels:
  K, G, P, Q, N; OS_C = MOC-SOP, many channels of one pixel: K and G only.
* ``nlr``: no local reuse — PE levels run no temporal loops at all.
* ``rs``: row stationary — a PE runs 1-D row primitives: every factor of the
  filter row R is a temporal loop inside the PE (with the output row P, and
  channels C and K for extra reuse); the other window axis (S, Q) is only
  unrolled across the array or iterated outside. Defined for convolutions;
  other ops fall back to ``free``.
* ``free``: only the target's own design constraints; the solver chooses.
"""

from __future__ import annotations

from dataclasses import dataclass

from joule.errors import JouleError
from joule.ir.loopnest import LoopNest
from joule.passes.mapper.mapspace.dim_classes import conv_classes
from joule.passes.mapper.mapspace.space import SpaceConstraints
from joule.pipeline import MappingModule
from joule.targets.spec import Target

DATAFLOWS = ("free", "ws", "os", "is", "rs", "nlr", "os_a", "os_b", "os_c")
_STATIONARY = {
    "ws": "weight",
    "os": "output",
    "is": "input",
    "os_a": "output",
    "os_b": "output",
    "os_c": "output",
}
# Convolution dims each output-stationary variant may unroll across the array.
_OS_SPATIAL = {
    "os_a": frozenset("PQN"),
    "os_b": frozenset("KGPQN"),
    "os_c": frozenset("KG"),
}


def space_constraints(nest: LoopNest, target: Target, dataflow: str = "free") -> SpaceConstraints:
    """The target's design constraints plus the dataflow's, in the nest's dim names."""
    if dataflow not in DATAFLOWS:
        raise JouleError(
            f"unknown dataflow {dataflow!r}", hint=f"choose one of {', '.join(DATAFLOWS)}"
        )
    cls = conv_classes(nest)
    dims = nest.dim_names
    temporal, xs, ys, perms = [], [], [], []
    for lvl in target.levels:
        c = lvl.constraints
        temporal.append(_allowed(dims, cls, c.temporal_dims))
        xs.append(_allowed(dims, cls, c.spatial_x))
        ys.append(_allowed(dims, cls, c.spatial_y))
        if c.permutation is None:
            perms.append(None)
        else:
            rank = {name: k for k, name in enumerate(c.permutation)}
            perms.append(tuple(sorted(dims, key=lambda d: rank.get(cls[d], -1))))
    applied = dataflow
    pe_levels = [i for i, lvl in enumerate(target.levels) if lvl.instances == target.pes]
    if dataflow == "rs" and not {"R", "P"} <= set(cls.values()):
        applied = "free"
    if applied in _STATIONARY:
        relevant = nest.tensor(_STATIONARY[applied]).relevant_dims  # type: ignore[arg-type]
        for i in pe_levels:
            temporal[i] = temporal[i] - relevant
        if applied in _OS_SPATIAL:
            parallel = {d for d in dims if cls[d] in _OS_SPATIAL[applied]}
            xs = [x & parallel for x in xs]
            ys = [y & parallel for y in ys]
    elif applied == "nlr":
        for i in pe_levels:
            temporal[i] = frozenset()
    elif applied == "rs":
        row = {d for d in dims if cls[d] in {"R", "P", "C", "K"}}
        filter_row = {d for d in dims if cls[d] == "R"}
        for i in range(len(target.levels)):
            if i in pe_levels:
                temporal[i] = temporal[i] & row
            else:
                temporal[i] = temporal[i] - filter_row
                xs[i] = xs[i] - filter_row
                ys[i] = ys[i] - filter_row
    return SpaceConstraints(
        temporal=tuple(temporal),
        spatial_x=tuple(xs),
        spatial_y=tuple(ys),
        permutation=tuple(perms),
        dataflow=applied,
    )


def _allowed(dims: tuple[str, ...], cls: dict[str, str], names: frozenset[str] | None) -> frozenset:
    if names is None:
        return frozenset(dims)
    return frozenset(d for d in dims if cls[d] in names)


@dataclass(frozen=True)
class AssignDataflow:
    """dataflow: attach each layer's mapspace constraints (target design + chosen dataflow).

    Precondition: canonicalized nests. Layers the dataflow does not apply to
    (row-stationary on a matmul) fall back to ``free`` and say so in a note.
    """

    dataflow: str = "free"
    name: str = "dataflow"

    def apply(self, module: MappingModule) -> MappingModule:
        layers = []
        for layer in module.layers:
            c = space_constraints(layer.nest, module.target, self.dataflow)
            notes = layer.notes
            if c.dataflow != self.dataflow:
                notes = (*notes, f"dataflow {self.dataflow} does not apply; mapped as {c.dataflow}")
            layers.append(layer.with_(constraints=c, notes=notes))
        return module.with_layers(layers)
