"""The cost of a mapping, written once: per (level, tensor, access kind) a count and its energy.

Every backend evaluates this one description: the model (plain integers,
``joule.cost.model``), the vectorised proof search (numpy arrays,
``joule.passes.mapper.proof.vector_model``), the CP-SAT formulation
(``joule.passes.mapper.cpsat.solve``) and the spatial bound (per-unrolling lower
bounds, ``joule.passes.mapper.bounds.spatial``). A count is an expression over
four building blocks that each backend computes its own fast way
(docs/cost-model.md, "Access counts"):

* ``fills(t, l)``: words all utilized instances of level ``l`` fetch of tensor ``t``
  as their tiles walk the loops above (boxes, consecutive-tile deltas with the
  innermost relevant loop's halo) -- ``F(t, l) x inst(l)``;
* ``first(t, l)``: distinct words of ``t`` all instances of ``l`` touch (first
  writes of outputs start at zero and are not fetched);
* ``shared(t, l, c)``: the spatial factors between levels ``l`` and ``c`` of dims
  ``t`` does not index: children that need identical data (multicast), or that
  hold partial sums of the same outputs (spatial reduction);
* ``macs``;
* ``links(t, c)``: words the instances of ``c`` take from a neighbour instead of
  the level above (inter-PE links, where the fan-out right above ``c`` has them),
  and ``lines(t, c)``: how many lines of linked instances the array has.

A new effect (imperfect tiles, inter-PE links, bit widths) changes this file
and the building blocks, nowhere else. The loop-walking simulator
(tests/simulator.py) stays independent of it: it is the oracle every backend
is tested against (tests/test_backends_agree.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from joule.cost.identity_memo import by_identity
from joule.errors import TargetError
from joule.ir.loopnest import LoopNest, Tensor
from joule.targets.spec import Links, Target

V = TypeVar("V")
Kind = Literal["read", "fill", "update", "network", "link"]


class Blocks(Protocol[V]):
    """What a backend computes itself; the arithmetic joining blocks is its own too
    (CP-SAT builds constraints where integers and arrays use operators)."""

    def macs(self) -> V: ...
    def fills(self, tensor: Tensor, level: int) -> V: ...
    def first(self, tensor: Tensor, level: int) -> V: ...
    def shared(self, tensor: Tensor, outer: int, inner: int) -> V: ...
    def grouped(self, tensor: Tensor, outer: int, inner: int) -> Blocks[V] | None: ...
    def links(self, tensor: Tensor, level: int) -> V: ...
    def lines(self, tensor: Tensor, level: int) -> V: ...
    def plus(self, a: V, b: V) -> V: ...
    def minus(self, a: V, b: V) -> V: ...
    def divide(self, a: V, b: V) -> V: ...  # exact: the divisor always divides
    def times(self, k: int, a: V) -> V: ...


# -- count expressions -------------------------------------------------------------------


@dataclass(frozen=True)
class Macs:
    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.macs()


@dataclass(frozen=True)
class Fills:
    level: int

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.fills(tensor, self.level)


@dataclass(frozen=True)
class First:
    level: int

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.first(tensor, self.level)


@dataclass(frozen=True)
class PerShared:
    """``count / shared(t, outer, inner)``: one access serves every child that needs it.

    With residual tiles the children of a group are not all busy at once; a
    backend that counts those gives ``grouped``: blocks that count each group
    once (the group runs while its first child does)."""

    count: Count
    outer: int
    inner: int

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        per_group = blocks.grouped(tensor, self.outer, self.inner)
        if per_group is not None:
            return self.count.value(per_group, tensor)
        shared = blocks.shared(tensor, self.outer, self.inner)
        return blocks.divide(self.count.value(blocks, tensor), shared)


@dataclass(frozen=True)
class LessFirst:
    """``count - first(t, level)``: the accesses a word's first write does not make.
    ``first`` is exact in every backend, so a lower bound of ``count`` less it is one too."""

    count: Count
    level: int

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.minus(self.count.value(blocks, tensor), blocks.first(tensor, self.level))


@dataclass(frozen=True)
class Linked:
    level: int

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.links(tensor, self.level)


@dataclass(frozen=True)
class PerLine:
    """``count / lines(t, level)``: Timeloop charges the child buffers one line's links."""

    count: Count
    level: int

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.divide(self.count.value(blocks, tensor), blocks.lines(tensor, self.level))


@dataclass(frozen=True)
class Less:
    """``a - b`` where ``b`` counts a subset of what ``a`` counts (links among fills)."""

    a: Count
    b: Count

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.minus(self.a.value(blocks, tensor), self.b.value(blocks, tensor))


@dataclass(frozen=True)
class Plus:
    a: Count
    b: Count

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.plus(self.a.value(blocks, tensor), self.b.value(blocks, tensor))


@dataclass(frozen=True)
class Twice:
    count: Count

    def value(self, blocks: Blocks[V], tensor: Tensor) -> V:
        return blocks.times(2, self.count.value(blocks, tensor))


Count = Macs | Fills | First | PerShared | LessFirst | Linked | PerLine | Less | Plus | Twice


@dataclass(frozen=True)
class Term:
    """``count`` accesses of ``kind`` to ``tensor`` at ``level``, each costing ``energy_pj``.
    Reads use the level's read port; fills and updates its write port; network words
    cross the fan-out below it (per hop); link words go from instance to neighbour
    instance below it."""

    level: int
    tensor: Tensor
    kind: Kind
    count: Count
    energy_pj: float


@dataclass(frozen=True)
class CostTerms:
    """Every access term of one layer on one target, tensor by tensor, outermost keeper
    first, then read, fill, update, network. Reads load a level's read port, fills and
    updates its write port; each backend's cycles take the busier one."""

    nest: LoopNest
    target: Target
    terms: tuple[Term, ...]
    keepers: dict[str, tuple[int, ...]]  # role -> levels keeping it, outermost first

    def evaluate(self, blocks: Blocks[V]) -> list[tuple[Term, V]]:
        """Each term with its count in the backend's representation."""
        return [(term, term.count.value(blocks, term.tensor)) for term in self.terms]


def networks_support(target: Target, outer: int, inner: int, feature: str) -> bool:
    """Whether every fan-out between two levels supports ``feature``."""
    return all(
        getattr(target.levels[j].network, feature)
        for j in range(outer, inner)
        if target.fanout(j) != (1, 1)
    )


def links_between(target: Target, tensor: Tensor, parent: int, child: int) -> Links | None:
    """The neighbour links that can feed ``child`` its ``tensor`` instead of ``parent``.

    Only the fan-out right above the child links (Timeloop drops the links of a
    fan-out whose next level bypasses the tensor), and only read-only tensors do
    (forwarded partial sums would need the child to reduce; Timeloop leaves that
    a FIXME and never links outputs in practice).
    """
    if tensor.role == "output" or child - 1 < parent:
        return None
    return target.levels[child - 1].network.links


def keepers_of(target: Target) -> dict[str, tuple[int, ...]]:
    """Per role, the levels that keep it, outermost first; the outermost must keep all."""
    keepers = {
        role: tuple(i for i, lvl in enumerate(target.levels) if role in lvl.keeps)
        for role in ("input", "weight", "output")
    }
    for role, levels in keepers.items():
        if not levels or levels[0] != 0:
            raise TargetError(
                f"the outermost level of target {target.name!r} does not keep the {role}",
                where=target.source_file or target.name,
                hint="the outermost level (DRAM) must keep every tensor",
            )
    return keepers


@by_identity(maxsize=512)
def cost_terms(nest: LoopNest, target: Target) -> CostTerms:
    """The access terms of ``nest`` on ``target`` (every search asks once per layer, the
    model once per scored mapping)."""
    keepers = keepers_of(target)
    terms: list[Term] = []

    def add(level: int, tensor: Tensor, kind: Kind, count: Count, energy_pj: float) -> None:
        terms.append(Term(level, tensor, kind, count, energy_pj))

    for tensor in nest.tensors:
        role = tensor.role
        levels = keepers[role]
        for k, i in enumerate(levels):
            lvl = target.levels[i]
            child = levels[k + 1] if k + 1 < len(levels) else None
            if tensor.role == "output":
                # Read-modify-write: a word's first update in an instance reads nothing,
                # and its first fill is not fetched (it starts at zero).
                if child is None:
                    updates: Count = Macs()
                else:
                    reduce = networks_support(target, i, child, "spatial_reduction")
                    updates = PerShared(Fills(child), i, child) if reduce else Fills(child)
                add(i, tensor, "read", LessFirst(updates, i), lvl.read_pj_of(role))
                if k > 0:
                    add(i, tensor, "fill", LessFirst(Fills(i), i), lvl.write_pj_of(role))
                add(i, tensor, "update", updates, lvl.update_pj_of(role))
                if child is not None:
                    # Partial sums drained up, and fetched back down except first writes.
                    add(
                        i,
                        tensor,
                        "network",
                        LessFirst(Twice(Fills(child)), child),
                        lvl.network.hop_energy_pj,
                    )
            else:
                if child is None:
                    reads: Count = Macs()  # one operand read per MAC
                else:
                    sent: Count = Fills(child)
                    below = links_between(target, tensor, i, child)
                    if below is not None:
                        # Linked words come from a neighbour, not from this level.
                        sent = Less(sent, Linked(child))
                    if networks_support(target, i, child, "multicast"):
                        # Identical data only: overlapping windows are read for each child.
                        reads = PerShared(sent, i, child)
                    else:
                        reads = sent
                above = links_between(target, tensor, levels[k - 1], i) if k > 0 else None
                if above is not None:
                    # The sender reads each forwarded word; the receiver fills it.
                    charged: Count = (
                        PerLine(Linked(i), i) if above.charge == "timeloop" else Linked(i)
                    )
                    reads = Plus(reads, charged)
                add(i, tensor, "read", reads, lvl.read_pj_of(role))
                if k > 0:
                    fills: Count = Fills(i)
                    if above is not None and above.charge == "timeloop":
                        fills = Plus(Less(fills, Linked(i)), PerLine(Linked(i), i))
                    add(i, tensor, "fill", fills, lvl.write_pj_of(role))
                if child is not None:
                    add(i, tensor, "network", sent, lvl.network.hop_energy_pj)
                    if below is not None:
                        add(i, tensor, "link", Linked(child), below.energy_pj)
    return CostTerms(nest, target, tuple(terms), keepers)
