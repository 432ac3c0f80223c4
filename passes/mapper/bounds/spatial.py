"""The energy bound: no mapping of the space spends less energy than this.

The compulsory bound of the cost model charges every word once per keeper level
whatever the spatial unrolling. But unrolling a dim across instances copies every
tensor that dim does not index into each of them (and overlapping windows into
each instance that needs them), and it decides how many instances share the
reduction of each output word (only those save the read-modify-write of a
partial sum in the innermost buffer). These are fixed by the spatial factors
alone, so the spatial bound enumerates every unrolling the space allows and
takes the cheapest::

    spatial = min over unrollings S of  const + sum_terms coef * count_t(level, S)

where ``count_t`` is at least ``words_t * rep_t(level, S)`` (``rep``: the spatial
factors above the level of dims ``t`` does not index: the instances that need the
same words) and at least the instances times each one's footprint. The terms of
the outermost level serving the levels below are then raised to the off-chip
bound (:mod:`joule.passes.mapper.bounds.offchip`) when that is higher. Per unrolling each
term is the smallest count the cost model can give (docs/cost-model.md, "Lower
bounds"), so the result is a certified bound.

With residual tiles (``--factors imperfect``) the same terms bound the wider
space (:func:`imperfect_energy_bound_pj`): unrollings take any spatial factor,
and an unrolling no longer fixes how many instances run -- a dim unrolled on
two slots leaves the last combinations of its residual idle -- so a count that
adds uses the fewest instance combinations that surely run, one that subtracts
the most (docs/cost-model.md, "Lower bounds over residual tiles").
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from joule.cost.model import distinct_words, lower_bound_pj
from joule.cost.nest import axis_terms, scaled_steps
from joule.cost.terms import cost_terms
from joule.ir.loopnest import Tensor
from joule.passes.mapper.bounds.offchip import offchip_bound_pj
from joule.passes.mapper.mapspace.space import MapSpace, Slot

MAX_UNROLLINGS = 200_000  # beyond this, fall back to the compulsory bound


@dataclass(frozen=True)
class _Footprint:
    """Instances of a level times the words each at least touches, over ``divisor``."""

    # Per axis, per dim on it: (its extent, its spatial slots above the level).
    axes: tuple[tuple[tuple[int, tuple[int, ...]], ...], ...]
    disjoint: bool  # no dim spans two axes: per-axis counts multiply
    above: tuple[int, ...]  # spatial slots above the level (their product: the instances)
    divisor: tuple[int, ...]  # slots whose product divides it (multicast sharing)


@dataclass(frozen=True)
class _Term:
    """``coef * max(words * product of the slots' factors, footprint words)``."""

    coef: float
    words: int
    slots: tuple[int, ...]  # indices into the space's spatial slot list
    offchip: bool  # the outermost level serving a level below: what the off-chip bound covers
    footprint: _Footprint | None = None
    unlinked: tuple[int, ...] = ()  # link-axis slots: only 1/f of the innermost moving one

    def value(self, factors: tuple[int, ...], running: _Running) -> float:
        if self.coef < 0:  # a subtracted count: every instance combination may run
            assert self.footprint is None, "only first writes are subtracted"
            count = self.words * math.prod(factors[k] for k in self.slots)
        else:
            count = self.words * running.least(self.slots, factors)
        if self.footprint is not None:
            count = max(count, _footprint_words(self.footprint, factors, running))
        return self.coef * count / _innermost_moving(self.unlinked, factors)


@dataclass(frozen=True)
class _Running:
    """How many combinations of some spatial slots' coordinates surely run.

    Perfect factors run them all. With residual tiles a dim's index must stay
    below its extent: over its nontrivial slots ``p_1`` (outermost) ... ``p_m``,
    every coordinate of ``p_1`` but the last admits every inner combination
    (the loops outside the residual run full tiles), so at least
    ``(p_1 - 1) p_2 ... p_m + 1`` combinations run; dims run independently."""

    dim_of: tuple[str, ...]  # per spatial slot, its dim (a dim's slots adjacent, outer first)
    imperfect: bool

    def least(self, slots: tuple[int, ...], factors: tuple[int, ...]) -> int:
        if not self.imperfect:
            return math.prod(factors[k] for k in slots)
        out = 1
        for group in self._by_dim(slots):
            moving = [factors[k] for k in group if factors[k] > 1]
            out *= (moving[0] - 1) * math.prod(moving[1:]) + 1 if moving else 1
        return out

    @functools.cache  # noqa: B019 -- a handful of slot sets per space, asked per unrolling
    def _by_dim(self, slots: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(g) for _, g in itertools.groupby(slots, key=self.dim_of.__getitem__))


def _innermost_moving(slots: tuple[int, ...], factors: tuple[int, ...]) -> int:
    """The factor of the last of ``slots`` above 1 (1 if none, or if that loop can never
    link: coded ``-1 - k``): a fan-out's linked words are at most (f - 1) / f of its fills,
    f being that innermost loop on the link axis."""
    for k in reversed(slots):
        f = factors[k if k >= 0 else -1 - k]
        if f > 1:
            return f if k >= 0 else 1
    return 1


def _footprint_words(fp: _Footprint, factors: tuple[int, ...], running: _Running) -> float:
    """Sliding windows: an instance whose spatial coordinates fix part of each dim still
    touches, along each axis, at least as many values as its largest remaining dim.
    Summed over the instances, the values of one dim they touch add up to its extent
    (with residual tiles the shares are unequal), times the combinations of the other
    slots that run; a sum of maxima is at least the largest such sum over choices of
    one dim per axis (one dim in all, when a dim spans two axes). With perfect
    factors that largest sum is the product of per-axis maxima times the instances."""
    best = max(words * running.least(rest, factors) for words, rest in _dim_choices(fp))
    return best / math.prod(factors[k] for k in fp.divisor)


@functools.cache
def _dim_choices(fp: _Footprint) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Per choice of one dim per axis (one in all if a dim spans two axes): the product
    of their extents and the spatial slots above the level left to the other dims."""
    axes = [axis or ((1, ()),) for axis in fp.axes]
    choices = itertools.product(*axes) if fp.disjoint else ((c,) for axis in axes for c in axis)
    out = []
    for choice in choices:
        chosen = {k for _, slots in choice for k in slots}
        rest = tuple(k for k in fp.above if k not in chosen)
        out.append((math.prod(e for e, _ in choice), rest))
    return tuple(out)


@functools.lru_cache(maxsize=8)  # the proof and the mapper's report both ask
def energy_bound_pj(space: MapSpace) -> float:
    """The best certified bound, never below the compulsory bound: the cheapest
    unrolling's, or the cheapest unrolling's on-chip part plus the off-chip bound
    (:mod:`joule.passes.mapper.bounds.offchip`) where that is higher than its off-chip part."""
    return _combined(space, imperfect=False)


def _combined(space: MapSpace, imperfect: bool) -> float:
    compulsory = lower_bound_pj(space.nest, space.target)
    per_unrolling = _per_unrolling(space, imperfect)
    if not per_unrolling or not per_unrolling[1]:
        return compulsory
    const, parts = per_unrolling
    joint = const + min(onchip + offchip for onchip, offchip, _ in parts)
    outer = offchip_bound_pj(space, imperfect)
    offchip = min(o for _, o, _ in parts)
    if outer is not None and math.isfinite(outer):
        offchip = max(offchip, outer)
    split = const + min(onchip for onchip, _, _ in parts) + offchip
    return max(compulsory, joint, split)


@functools.lru_cache(maxsize=8)
def imperfect_energy_bound_pj(space: MapSpace) -> float:
    """The certified bound over residual tiles too, combined as :func:`energy_bound_pj`:
    every unrolling with any spatial factors (counting the instances that surely run),
    the off-chip bound over every outer iteration count."""
    return _combined(space, imperfect=True)


@dataclass(frozen=True)
class RankedUnrolling:
    """One unrolling and its bound, split into the part on chip (with the constant) and
    the part the outermost level serves (which the off-chip bound can raise)."""

    bound: float
    onchip: float
    offchip: float
    factors: dict[Slot, int]


def ranked_unrollings(space: MapSpace) -> list[RankedUnrolling] | None:
    """Every unrolling of the space with its bound, cheapest first (ties in enumeration
    order); None when there are more than MAX_UNROLLINGS to enumerate."""
    per_unrolling = _per_unrolling(space)
    if per_unrolling is None:
        return None
    const, parts = per_unrolling
    spatial = spatial_slots(space)
    ranked = sorted(
        (const + onchip + offchip, k, onchip, offchip, factors)
        for k, (onchip, offchip, factors) in enumerate(parts)
    )
    return [
        RankedUnrolling(value, const + onchip, offchip, dict(zip(spatial, f, strict=True)))
        for value, _, onchip, offchip, f in ranked
    ]


@functools.lru_cache(maxsize=8)  # the mapper bounds a space and the warm start ranks it
def _per_unrolling(
    space: MapSpace, imperfect: bool = False
) -> tuple[float, list[tuple[float, float, tuple[int, ...]]]] | None:
    """The constant part, and per unrolling its on-chip and off-chip terms' sums."""
    spatial = spatial_slots(space)
    const, terms = _terms(space, spatial, imperfect)
    running = _Running(tuple(s.dim for s in spatial), imperfect)
    parts = []
    for count, factors in enumerate(_unrollings(space, spatial, imperfect)):
        if count >= MAX_UNROLLINGS:
            return None
        sums = [0.0, 0.0]
        for term in terms:
            sums[term.offchip] += term.value(factors, running)
        parts.append((sums[0], sums[1], factors))
    return const, parts


def spatial_slots(space: MapSpace) -> list[Slot]:
    return [s for d in space.dims for s in space.slots[d] if s.axis is not None]


def _terms(space: MapSpace, spatial: list[Slot], imperfect: bool) -> tuple[float, list[_Term]]:
    """The cost terms (``joule.cost.terms``) as functions of the spatial factors alone:
    each count's lower bound given an unrolling, split into constant and varying parts."""
    nest, target = space.nest, space.target
    terms = cost_terms(nest, target)
    const = nest.macs * target.mac_energy_pj
    out: list[_Term] = []
    for term, atoms in terms.evaluate(BoundBlocks(space, spatial, imperfect)):
        serves = term.level == 0 and len(terms.keepers[term.tensor.role]) > 1
        for atom in atoms:
            if atom.mult == 0:
                continue
            coef = atom.mult * term.energy_pj
            if not atom.slots and atom.footprint is None and not atom.unlinked and not serves:
                const += coef * atom.words  # the off-chip bound may raise what serves
            else:
                out.append(
                    _Term(coef, atom.words, atom.slots, serves, atom.footprint, atom.unlinked)
                )
    return const, out


@dataclass(frozen=True)
class _Atom:
    """``mult * max(words * product of the slots' factors, footprint)``: a count's lower
    bound given an unrolling; a count is a sum of atoms."""

    mult: int
    words: int
    slots: tuple[int, ...]
    footprint: _Footprint | None = None
    unlinked: tuple[int, ...] = ()  # the count is only what links leave (see _Term)


class _Linked(list):
    """Linked words: bounded below by none (an empty sum of atoms); subtracted from fills,
    they leave at least 1/f of them (``BoundBlocks.minus``)."""

    def __init__(self, slots: tuple[int, ...]) -> None:
        super().__init__()
        self.slots = slots


class BoundBlocks:
    """The building blocks of ``joule.cost.terms`` bounded from below given only the
    spatial unrolling (docs/cost-model.md, "Lower bounds"):

    * ``fills(t, l) >= words_t x rep_t(l)``, the instances of ``l`` that need the same
      words, and (inputs and weights) ``>=`` the instances times each one's footprint;
    * ``first(t, l) = words_t x rep_t(l)`` exactly (output projections are injective),
      so subtracting it keeps a lower bound;
    * ``shared`` is exact: dividing by it removes its slots from ``rep``;
    * ``links(t, l) >= 0``, and ``fills - links >= fills / f`` with ``f`` the factor of
      the innermost moving spatial loop on the link axis (at most (f - 1) / f of the
      instances take a tile from a neighbour).
    """

    def __init__(self, space: MapSpace, spatial: list[Slot], imperfect: bool = False) -> None:
        self.space = space
        self.spatial = spatial
        self.imperfect = imperfect  # steps need not divide extents (residual tiles)
        self._distinct: dict[str, int] = {}  # enumerates up to 2^20 indices: once per tensor

    def _rep(self, tensor: Tensor, level: int) -> tuple[int, ...]:
        relevant = tensor.relevant_dims
        return tuple(
            k for k, s in enumerate(self.spatial) if s.level < level and s.dim not in relevant
        )

    def _words(self, tensor: Tensor) -> int:
        if tensor.role == "output":  # injective: the model's first writes are this product
            return math.prod(self.space.nest.extents[d] for d in tensor.relevant_dims)
        if tensor.role not in self._distinct:
            self._distinct[tensor.role] = distinct_words(self.space.nest, tensor)
        return self._distinct[tensor.role]

    def macs(self) -> list[_Atom]:
        return [_Atom(1, self.space.nest.macs, ())]

    def fills(self, tensor: Tensor, level: int) -> list[_Atom]:
        window = None if tensor.role == "output" else self._footprint(tensor, level)
        return [_Atom(1, self._words(tensor), self._rep(tensor, level), window)]

    def first(self, tensor: Tensor, level: int) -> list[_Atom]:
        return [_Atom(1, self._words(tensor), self._rep(tensor, level))]

    def grouped(self, tensor: Tensor, outer: int, inner: int) -> None:
        # Divide by the nominal group instead, a bound with residual tiles too: a group
        # fetches at least what its busiest member does, its first.
        return None

    def shared(self, tensor: Tensor, outer: int, inner: int) -> tuple[int, ...]:
        relevant = tensor.relevant_dims
        return tuple(
            k
            for k, s in enumerate(self.spatial)
            if outer <= s.level < inner and s.dim not in relevant
        )

    def links(self, tensor: Tensor, level: int) -> list[_Atom]:
        terms = axis_terms(tensor)
        relevant = tensor.relevant_dims

        def can_link(d: str) -> bool:
            """Some other dim's shift can equal d's offset: ``|c_e| step_e == |c_d| step_d``
            for steps the space allows: divisors of the extents, any step below them
            with residual tiles (never for C or K of an input, nor, perfect, for S
            under a stride-2 Q with S = 3)."""
            for e in relevant - {d}:
                pairs = scaled_steps(terms, e, d)
                if pairs and all(
                    any(ce * a % cd == 0 and self._is_step(d, ce * a // cd) for a in self._steps(e))
                    for _, (ce, cd) in pairs
                ):
                    return True
            return False

        # A loop over a dim that cannot link is coded -1 - k: its factor does not count.
        axis = tuple(
            k if can_link(s.dim) else -1 - k
            for s in self.space.link_slots(level)
            for k in (self.spatial.index(s),)
        )
        return _Linked(axis)

    def lines(self, tensor: Tensor, level: int) -> tuple[int, ...]:
        return ()  # divides only linked words, whose bound is none

    def _steps(self, dim: str) -> Iterable[int]:
        extent = self.space.nest.extents[dim]
        return range(1, extent + 1) if self.imperfect else _divisors(extent)

    def _is_step(self, dim: str, step: int) -> bool:
        extent = self.space.nest.extents[dim]
        return 1 <= step <= extent and (self.imperfect or extent % step == 0)

    def plus(self, a: list[_Atom], b: list[_Atom]) -> list[_Atom]:
        return [*a, *b]

    def minus(self, a: list[_Atom], b: list[_Atom]) -> list[_Atom]:
        if isinstance(b, _Linked):
            assert not any(x.unlinked for x in a)
            return [dataclasses.replace(x, unlinked=b.slots) for x in a]
        return _merge([*a, *(_Atom(-x.mult, x.words, x.slots, x.footprint) for x in b)])

    def divide(self, a: list[_Atom], b: tuple[int, ...]) -> list[_Atom]:
        out = []
        for x in a:
            assert set(b) <= set(x.slots), "a count is divided only by spatial factors it holds"
            window = x.footprint
            if window is not None:
                window = dataclasses.replace(window, divisor=window.divisor + b)
            slots = tuple(k for k in x.slots if k not in b)
            out.append(dataclasses.replace(x, slots=slots, footprint=window))
        return out

    def times(self, k: int, a: list[_Atom]) -> list[_Atom]:
        return [dataclasses.replace(x, mult=k * x.mult) for x in a]

    def _footprint(self, tensor: Tensor, level: int) -> _Footprint:
        nest, spatial = self.space.nest, self.spatial
        axes = tuple(
            tuple(
                (
                    nest.extents[d],
                    tuple(k for k, s in enumerate(spatial) if s.level < level and s.dim == d),
                )
                for d in axis.dims
            )
            for axis in tensor.projection
        )
        dims_per_axis = [set(axis.dims) for axis in tensor.projection]
        disjoint = sum(len(a) for a in dims_per_axis) == len(set().union(*dims_per_axis))
        above = tuple(k for k, s in enumerate(spatial) if s.level < level)
        return _Footprint(axes, disjoint, above, ())


@functools.lru_cache(maxsize=1024)
def _divisors(n: int) -> tuple[int, ...]:
    return tuple(k for k in range(1, n + 1) if n % k == 0)


def _merge(atoms: list[_Atom]) -> list[_Atom]:
    """Atoms of the same words and slots add up (exactly: their multipliers are integers).
    Only atoms without a footprint merge: a footprint's max does not distribute."""
    out: dict[tuple, _Atom] = {}
    for x in atoms:
        key = (x.words, x.slots) if x.footprint is None and not x.unlinked else (id(x),)
        if key in out:
            out[key] = _Atom(out[key].mult + x.mult, x.words, x.slots)
        else:
            out[key] = x
    return list(out.values())


def _unrollings(space: MapSpace, spatial: list[Slot], imperfect: bool) -> Iterator[tuple[int, ...]]:
    """Every assignment of factors to the spatial slots that some point of the space has
    (with residual tiles, a superset: the bound stays a bound)."""
    per_dim: list[tuple[list[int], list[tuple[int, ...]]]] = []
    for d in space.dims:
        positions = [k for k, s in enumerate(space.slots[d]) if s.axis is not None]
        if not positions:
            continue
        indices = [spatial.index(space.slots[d][k]) for k in positions]
        if imperfect:
            limits = [space.slot_limit(space.slots[d][k]) for k in positions]
            choices = sorted(_residual_unrollings(space.extents[d], limits))
        else:
            choices = sorted(space.tuples_by_unrolling[d])
        per_dim.append((indices, choices))
    limit = {(s.level, s.axis): space.fanout[s.level][0 if s.axis == "X" else 1] for s in spatial}
    factors = [1] * len(spatial)
    used = dict.fromkeys(limit, 1)

    def walk(depth: int) -> Iterator[tuple[int, ...]]:
        if depth == len(per_dim):
            yield tuple(factors)
            return
        indices, choices = per_dim[depth]
        for choice in choices:
            keys = [(spatial[k].level, spatial[k].axis) for k in indices]
            for key, f in zip(keys, choice, strict=True):
                used[key] *= f
            if all(used[key] <= limit[key] for key in keys):
                for k, f in zip(indices, choice, strict=True):
                    factors[k] = f
                yield from walk(depth + 1)
            for key, f in zip(keys, choice, strict=True):
                used[key] //= f
        for k in indices:
            factors[k] = 1

    yield from walk(0)


def _residual_unrollings(extent: int, limits: list[int]) -> Iterator[tuple[int, ...]]:
    """A dim's spatial factors (slot order) that some imperfect tuple may have: each at
    most its fan-out and ``ceil(extent / the spatial factors inside it)`` (a loop with a
    factor above 1 has less than the extent inside it, the outermost excepted)."""
    if not limits:
        yield ()
        return
    for tail in _residual_unrollings(extent, limits[1:]):
        inside = math.prod(tail)
        for f in range(1, min(limits[0], -(-extent // inside)) + 1):
            yield (f, *tail)
