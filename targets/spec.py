"""The accelerator description as data: storage levels from DRAM inwards, networks, the MAC.

This mirrors Timeloop's architecture model. Levels are ordered outermost
(DRAM) first; each keeps some tensors (by dataflow role) and bypasses the rest;
``instances`` says how many copies exist, arranged as ``mesh_x`` x ``mesh_y``.
Where a level has more instances than the level above, the difference is a
spatial fan-out whose loops a mapping places on the X and Y axes.

Energies are per *word* (one element of the tensor), already divided by the
block size where the source quotes them per vector access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from joule.ir.loopnest import Role


@dataclass(frozen=True)
class Links:
    """Neighbour forwarding between the instances a fan-out feeds (Timeloop's inter-PE
    link transfers, docs/cost-model.md "Inter-PE links"): along ``axis``, an instance
    takes a whole new tile from the neighbour that received it one step earlier
    instead of from the level above.

    ``charge`` says how the child buffers pay: ``every_word`` (each forwarded word is a
    read in the sender and a fill in the receiver) or ``timeloop`` (Timeloop's
    accounting, which spreads one line's forwarded words over all child instances).
    """

    axis: Literal["X", "Y"]
    energy_pj: float = 0.0  # per word forwarded (Timeloop: one hop plus two routers)
    charge: Literal["every_word", "timeloop"] = "every_word"


@dataclass(frozen=True)
class Network:
    """The network from a level to the instances of the next level that fans out."""

    multicast: bool = True
    spatial_reduction: bool = False
    hop_energy_pj: float = 0.0
    source: str = ""
    links: Links | None = None  # None: no neighbour forwarding


@dataclass(frozen=True)
class LevelConstraints:
    """Restrictions a target's design puts on any mapping (Timeloop's arch constraints).

    Dim names are the convolution's (N K C P Q R S G); :mod:`targets.dim_classes`
    translates them for other ops.
    """

    temporal_dims: frozenset[str] | None = None  # dims that may have factor > 1 here
    spatial_x: frozenset[str] | None = None  # dims allowed on the X axis of the fan-out
    spatial_y: frozenset[str] | None = None
    permutation: tuple[str, ...] | None = None  # fixed loop order, outermost first


@dataclass(frozen=True)
class StorageLevel:
    name: str
    keeps: frozenset[Role]
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    capacity_words: int | None = None  # shared by the kept tensors; None = unbounded
    capacity_per_tensor: tuple[tuple[Role, int], ...] = ()  # separate buffers per tensor
    read_pj: float = 0.0
    write_pj: float = 0.0
    update_pj: float = 0.0
    energy_source: str = ""
    bandwidth_words_per_cycle: float | None = None  # None = never the bottleneck
    word_bits: int = 16
    network: Network = field(default_factory=Network)  # towards the inner fan-out
    constraints: LevelConstraints = field(default_factory=LevelConstraints)
    # Bits per value of each kept tensor when they differ from ``word_bits`` (a
    # precision, joule.targets.precision); energies and capacities follow them.
    tensor_bits: tuple[tuple[Role, int], ...] = ()
    block_bits: int | None = None  # bits one access moves; None: one word

    def capacity_for(self, role: Role) -> int | None:
        """Words available to ``role`` alone when buffers are split, else None."""
        return dict(self.capacity_per_tensor).get(role)

    def bits_of(self, role: Role) -> int:
        for kept, bits in self.tensor_bits:  # at most three; checked on every scored tile
            if kept == role:
                return bits
        return self.word_bits

    def capacity_bits(self) -> int | None:
        """Bits shared by the kept tensors (values pack densely), or None (unbounded)."""
        return None if self.capacity_words is None else self.capacity_words * self.word_bits

    def capacity_bits_for(self, role: Role) -> int | None:
        words = self.capacity_for(role)
        return None if words is None else words * self.word_bits

    def energy_scale(self, role: Role) -> float:
        """Energy of one ``role`` value relative to one word: an access moves a block of
        ``block_bits``, holding ``block // bits`` values (or a value takes several)."""
        bits = self.bits_of(role)
        if bits == self.word_bits:
            return 1.0
        block = self.block_bits or self.word_bits
        native = _values_per_block(block, self.word_bits)
        return native / _values_per_block(block, bits)

    def read_pj_of(self, role: Role) -> float:
        return self.read_pj * self.energy_scale(role)

    def write_pj_of(self, role: Role) -> float:
        return self.write_pj * self.energy_scale(role)

    def update_pj_of(self, role: Role) -> float:
        return self.update_pj * self.energy_scale(role)


def _values_per_block(block: int, bits: int) -> float:
    """Values one access of ``block`` bits moves: whole values only, or a fraction of one."""
    return block // bits if bits <= block else 1 / -(-bits // block)


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    levels: tuple[StorageLevel, ...]
    mac_energy_pj: float
    mac_energy_source: str = ""
    word_bits: int = 16
    clock_hz: float = 1e9
    source_file: str = ""
    content_hash: str = ""  # sha256 of the file's bytes: identifies the exact description used
    technology: str = ""  # process node the energies belong to, e.g. "65nm"
    notes: str = ""  # what the description leaves out or assumes (leakage, bandwidths, ...)

    @property
    def pes(self) -> int:
        return self.levels[-1].instances

    def level(self, name: str) -> StorageLevel:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(name)

    def fanout(self, index: int) -> tuple[int, int]:
        """(X, Y) fan-out below level ``index``: 1x1 where the next level has as many instances."""
        if index + 1 >= len(self.levels):
            return (1, 1)
        outer, inner = self.levels[index], self.levels[index + 1]
        return (inner.mesh_x // outer.mesh_x, inner.mesh_y // outer.mesh_y)
