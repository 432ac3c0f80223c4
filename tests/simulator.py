"""Reference simulator: walks a mapped loop nest MAC by MAC and counts every access.

Ground truth for the analytical model (``compiler/cost``) on small layers. It is
written from docs/cost-model.md alone and shares no code with the model: where
the model uses closed forms (box extents, delta formulas, products of factors),
this file enumerates.

* Every MAC of the mapped nest is visited in nest order (outermost loop first,
  spatial loops included), so ``macs`` is counted, not computed. With imperfect
  factors the loops run their full factors and a MAC whose index on some dim
  reaches the dim's extent does not run: every tile that runs is exactly the
  points it holds (residual tiles, idle instances in the last spatial step).
* A level-*l* instance is named by the indices of the spatial loops above *l*'s
  boundary; its *step* by the indices of the temporal loops above it. The tile
  held during one (instance, step) is the bounding box of the words the MACs of
  that period touch (Timeloop's axis-aligned hyper-rectangle).
* Each instance keeps exactly one resident tile per tensor: moving to the next
  step fetches the words of the new box missing from the old one (fills) and
  evicts the rest (for outputs: drains to the parent). As in Timeloop, the old
  tile is only kept while it slides one way: only a step that advances L*, the
  innermost loop above the level over a dim the tensor depends on, by one keeps
  the overlap; any other change of those loops evicts the tile and fetches the
  whole new box. An instance that runs no MAC during a step (a residual left
  it idle) does nothing then and keeps its tile.
* Outputs are read-modify-written: a word touched for the first time by an
  instance is not fetched (it starts at zero) and its first update needs no read.
* When the fan-out multicasts, one parent read serves, at each step, all the
  children that differ only in spatial loops over dims the tensor does not
  depend on (they fetch the same words); when it reduces spatially, their
  drained partial sums merge into one update. Children whose windows merely
  overlap (a sliding window unrolled across PEs) are served separately, as in
  Timeloop. The feature must be present at every fan-out between the levels.
* Inter-PE links (a fan-out whose network has ``links``): on a step that only
  advances the innermost temporal loop above the child, a child instance whose
  whole tile is new takes it from its neighbour (index +-1 in the innermost
  spatial loop on the link axis right above the child) if that neighbour fetched
  exactly those words on the step before, provided that strictly lowers the
  distinct words the parent sends at that step (Timeloop's test). The parent
  does not send linked words; the child buffers are charged a read (sender) and a
  fill (receiver) per linked word, or with ``charge: timeloop`` one line's worth
  spread over the array (reads + L/lines, fills - L + L/lines).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, field

from joule.ir.loopnest import LoopNest, Tensor
from joule.mapping import Mapping
from joule.targets.spec import Target

Point = tuple[int, ...]
Box = tuple[tuple[int, int], ...]  # per axis (lo, hi), inclusive


@dataclass
class Counts:
    """Accesses of one tensor at one level, totals over all instances (words)."""

    reads: int = 0
    fills: int = 0
    updates: int = 0


@dataclass
class SimResult:
    macs: int
    accesses: dict[str, dict[str, Counts]]
    network_words: dict[str, dict[str, int]] = field(default_factory=dict)
    link_words: dict[str, dict[str, int]] = field(default_factory=dict)
    first_touches: dict[str, dict[str, int]] = field(default_factory=dict)
    compute_cycles: int = 0  # temporal steps in which at least one MAC runs

    def as_tuples(self) -> dict[str, dict[str, tuple[int, int, int]]]:
        """Counts as plain (reads, fills, updates) tuples, for comparisons."""
        return {
            lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
            for lvl, roles in self.accesses.items()
        }


@dataclass(frozen=True)
class _Loop:
    dim: str
    factor: int
    level: int
    spatial: bool
    axis: str | None = None


def _flatten(target: Target, mapping: Mapping) -> tuple[list[_Loop], list[int]]:
    """The nest's loops outermost first, and each level's boundary position."""
    by_name = {lvl.level: lvl for lvl in mapping.levels}
    loops: list[_Loop] = []
    boundary: list[int] = []
    for index, level in enumerate(target.levels):
        boundary.append(len(loops))
        lvl = by_name.get(level.name)
        if lvl is None:
            continue
        loops += [_Loop(lp.dim, lp.factor, index, False) for lp in lvl.temporal]
        loops += [_Loop(lp.dim, lp.factor, index, True, lp.axis) for lp in lvl.spatial]
    return loops, boundary


def _steps(loops: list[_Loop]) -> list[int]:
    """Per loop, the product of its dim's factors in every loop nested inside it."""
    out = []
    for i, lp in enumerate(loops):
        out.append(math.prod(inner.factor for inner in loops[i + 1 :] if inner.dim == lp.dim))
    return out


def _box_points(box: Box) -> set[Point]:
    return set(itertools.product(*(range(lo, hi + 1) for lo, hi in box)))


def _grow(box: Box | None, point: Point) -> Box:
    if box is None:
        return tuple((x, x) for x in point)
    return tuple((min(lo, x), max(hi, x)) for (lo, hi), x in zip(box, point, strict=True))


def simulate(nest: LoopNest, target: Target, mapping: Mapping) -> SimResult:
    """Walk every MAC of ``mapping`` and count reads, fills and updates per level and role."""
    loops, boundary = _flatten(target, mapping)
    steps = _steps(loops)
    nlev = len(target.levels)
    dims = nest.dim_names

    # Which positions of the index tuple name a level's instance and its step.
    inst_pos = [[i for i in range(boundary[l_]) if loops[i].spatial] for l_ in range(nlev)]
    step_pos = [[i for i in range(boundary[l_]) if not loops[i].spatial] for l_ in range(nlev)]

    keepers = {
        t.role: [i for i, lvl in enumerate(target.levels) if t.role in lvl.keeps]
        for t in nest.tensors
    }
    innermost = {role: levels[-1] for role, levels in keepers.items()}

    # tiles[role][level][instance][step] = bounding box of the words touched then.
    tiles: dict[str, dict[int, dict[Point, dict[Point, Box]]]] = {
        t.role: {lvl: defaultdict(dict) for lvl in keepers[t.role]} for t in nest.tensors
    }
    mac_reads: dict[str, dict[Point, int]] = {t.role: defaultdict(int) for t in nest.tensors}
    out_updates: dict[Point, int] = defaultdict(int)
    out_rmw_reads: dict[Point, int] = defaultdict(int)
    out_written: dict[Point, set[Point]] = defaultdict(set)
    # touched[level][instance] = output words the MACs under that instance update
    touched: dict[int, dict[Point, set[Point]]] = {
        lvl: defaultdict(set) for lvl in keepers[nest.output.role]
    }

    extents = nest.extents
    temporal_pos = [i for i, lp in enumerate(loops) if not lp.spatial]
    busy_steps: set[Point] = set()
    macs = 0
    for index in itertools.product(*(range(lp.factor) for lp in loops)):
        point = dict.fromkeys(dims, 0)
        for i, lp in enumerate(loops):
            point[lp.dim] += index[i] * steps[i]
        if any(point[d] >= extents[d] for d in dims):
            continue  # beyond a residual tile: this MAC does not run
        macs += 1
        busy_steps.add(tuple(index[i] for i in temporal_pos))
        for tensor in nest.tensors:
            word = tuple(axis.evaluate(point) for axis in tensor.projection)
            for lvl in keepers[tensor.role]:
                inst = tuple(index[i] for i in inst_pos[lvl])
                step = tuple(index[i] for i in step_pos[lvl])
                per_inst = tiles[tensor.role][lvl][inst]
                per_inst[step] = _grow(per_inst.get(step), word)
                if tensor.role == "output":
                    touched[lvl][inst].add(word)
            inner = innermost[tensor.role]
            inst = tuple(index[i] for i in inst_pos[inner])
            if tensor.role == "output":
                # One read-modify-write per MAC; the first write of a word reads nothing.
                out_updates[inst] += 1
                if word in out_written[inst]:
                    out_rmw_reads[inst] += 1
                else:
                    out_written[inst].add(word)
            else:
                mac_reads[tensor.role][inst] += 1

    accesses: dict[str, dict[str, Counts]] = {lvl.name: {} for lvl in target.levels}
    network: dict[str, dict[str, int]] = {lvl.name: {} for lvl in target.levels}
    links: dict[str, dict[str, int]] = {}
    first_touches: dict[str, dict[str, int]] = {lvl.name: {} for lvl in target.levels}
    for tensor in nest.tensors:
        peers = _count_tensor(
            tensor,
            target,
            loops,
            boundary,
            keepers[tensor.role],
            tiles[tensor.role],
            touched if tensor.role == "output" else None,
            accesses,
            network,
            first_touches,
        )
        inner = target.levels[innermost[tensor.role]].name
        counts = accesses[inner][tensor.role]
        if tensor.role == "output":
            counts.updates = sum(out_updates.values())
            counts.reads = sum(out_rmw_reads.values())
        else:
            counts.reads = sum(mac_reads[tensor.role].values())
        for (parent, child), (linked, lines) in peers.items():
            links.setdefault(target.levels[parent].name, {})[tensor.role] = linked
            counts = accesses[target.levels[child].name][tensor.role]
            link = target.levels[child - 1].network.links
            assert link is not None
            if link.charge == "timeloop":
                counts.reads += linked // lines
                counts.fills += linked // lines - linked
            else:
                counts.reads += linked
    return SimResult(macs, accesses, network, links, first_touches, len(busy_steps))


@dataclass
class _Walk:
    """What one instance did at one level, step by step."""

    fetched: dict[Point, set[Point]]  # step -> words fetched (new in the tile)
    whole: dict[Point, bool]  # step -> the whole tile was fetched
    drained: dict[Point | str, set[Point]]  # step (or "end") -> words evicted
    fills: int  # words fetched from the parent (first touches of outputs excluded)
    first: int  # distinct words ever touched


def _walk(per_step: dict[Point, Box], touched: set[Point] | None, star: int | None) -> _Walk:
    """One instance's tile moving step by step; ``touched``: the output words its MACs update.

    ``star``: position in the step index of L*, the innermost loop with more than
    one iteration over a dim the tensor depends on. As in Timeloop, the old tile
    is kept only while it slides one way: across a step that advances L* by one
    (loops inside it are irrelevant: the tile stays); any other move of L* or
    the loops outside it fetches the whole new tile.

    A word entering the tile is fetched unless it is an output word the instance
    updates and has never held before: then it starts at zero. (Words of the box
    that no MAC of the instance updates, e.g. gaps left by a strided projection,
    are always fetched.)
    """
    prev: set[Point] = set()
    seen: set[Point] = set()
    fetched: dict[Point, set[Point]] = {}
    whole: dict[Point, bool] = {}
    drained: dict[Point | str, set[Point]] = {}
    fills = 0
    last: Point | None = None
    for step in sorted(per_step):
        cur = _box_points(per_step[step])
        if last is not None and star is not None and step[:star] != last[:star]:
            moved = True  # a loop outside L* moved
        elif last is not None and star is not None:
            moved = step[star] not in (last[star], last[star] + 1)
        else:
            moved = False
        if moved:
            drained[step] = prev
            prev = set()
        new = cur - prev
        fetched[step] = new
        whole[step] = new == cur
        drained[step] = drained.get(step, set()) | (prev - cur)
        if touched is None:
            fills += len(new)
        else:
            fills += len(new) - len((new - seen) & touched)
        seen |= new
        prev = cur
        last = step
    drained["end"] = prev
    return _Walk(fetched, whole, drained, fills, len(touched) if touched is not None else len(seen))


def _count_tensor(
    tensor: Tensor,
    target: Target,
    loops: list[_Loop],
    boundary: list[int],
    keepers: list[int],
    tiles: dict[int, dict[Point, dict[Point, Box]]],
    touched: dict[int, dict[Point, set[Point]]] | None,
    accesses: dict[str, dict[str, Counts]],
    network: dict[str, dict[str, int]],
    first_touches: dict[str, dict[str, int]],
) -> dict[tuple[int, int], tuple[int, int]]:
    """Counts the tensor's accesses; returns, per (parent, child) with inter-PE links,
    the words linked and the lines of linked instances (the caller charges the child)."""
    role = tensor.role
    peers: dict[tuple[int, int], tuple[int, int]] = {}

    def star_step(lvl: int) -> int | None:
        temporal = [i for i in range(boundary[lvl]) if not loops[i].spatial]
        relevant = [
            k
            for k, i in enumerate(temporal)
            if loops[i].dim in tensor.relevant_dims and loops[i].factor > 1
        ]
        return relevant[-1] if relevant else None

    walks = {
        lvl: {
            inst: _walk(steps, None if touched is None else touched[lvl][inst], star_step(lvl))
            for inst, steps in tiles[lvl].items()
        }
        for lvl in keepers
    }
    for k, lvl in enumerate(keepers):
        name = target.levels[lvl].name
        counts = Counts()
        accesses[name][role] = counts
        if k > 0:
            counts.fills = sum(w.fills for w in walks[lvl].values())
        first_touches[name][role] = sum(w.first for w in walks[lvl].values())
        if k + 1 == len(keepers):
            continue  # the innermost keeper is charged per MAC by the caller
        child = keepers[k + 1]
        # Spatial loops between the parent's and the child's boundaries, by fan-out stage.
        between = [i for i in range(boundary[lvl], boundary[child]) if loops[i].spatial]
        parent_inst = [i for i in range(boundary[lvl]) if loops[i].spatial]
        child_inst = [i for i in range(boundary[child]) if loops[i].spatial]
        # Children are grouped by the parent instance and by the spatial loops over dims
        # the tensor depends on: only children that differ in dims irrelevant to it
        # hold the same data (docs/cost-model.md; as in Timeloop, whose X and Y
        # containers never see two sliding windows as one delta). Unless every
        # fan-out between the two levels has the feature, no children share.
        relevant = tensor.relevant_dims
        same_data = [i for i in between if loops[i].dim in relevant]
        stages = [j for j in range(lvl, child) if target.fanout(j) != (1, 1)]
        multicast = all(target.levels[j].network.multicast for j in stages)
        reduction = all(target.levels[j].network.spatial_reduction for j in stages)
        mc_key = same_data if multicast else between
        red_key = same_data if reduction else between

        def key_of(inst: Point, keep: list[int], child_inst: list[int] = child_inst) -> Point:
            pos = dict(zip(child_inst, inst, strict=True))
            return tuple(pos[i] for i in keep)

        link = target.levels[child - 1].network.links
        linked: set[tuple[Point, Point]] = set()
        if link is not None and role != "output" and child - 1 >= lvl:
            group_key = parent_inst + mc_key
            linked = _linked(loops, boundary, child, link.axis, walks[child], group_key, key_of)
            # A line: the instances that differ only along the link axis of that fan-out.
            across = [
                i
                for i in child_inst
                if not (loops[i].level == child - 1 and loops[i].axis == link.axis)
            ]
            lines = {key_of(inst, across) for inst in walks[child]}
            words = sum(len(walks[child][inst].fetched[step]) for inst, step in linked)
            peers[(lvl, child)] = (words, len(lines))
        # One parent read serves every child of a group at a step; their deltas are equal.
        sent: dict[tuple[Point, Point], set[frozenset[Point]]] = defaultdict(set)
        # merged[parent instance][step][branch] = the distinct drained word sets
        merged: dict[Point, dict[Point | str, dict[Point, set[frozenset[Point]]]]] = defaultdict(
            lambda: defaultdict(lambda: defaultdict(set))
        )
        child_fills = 0
        drains = 0
        for inst, walk in walks[child].items():
            owner = key_of(inst, parent_inst)
            child_fills += walk.fills
            if role == "output":
                branch = key_of(inst, red_key)
                for step, words in walk.drained.items():
                    drains += len(words)
                    if words:
                        merged[owner][step][branch].add(frozenset(words))
            else:
                group = owner + key_of(inst, mc_key)
                for step, words in walk.fetched.items():
                    if words and (inst, step) not in linked:
                        sent[(group, step)].add(frozenset(words))
        if role == "output":
            # Read-modify-write at the parent: every update reads the old value but
            # the first update of a word this parent instance's MACs touch (it was 0).
            assert touched is not None
            assert all(
                len(sets) == 1
                for by_step in merged.values()
                for b in by_step.values()
                for sets in b.values()
            ), "a reduction group disagrees"
            for owner, by_step in merged.items():
                written: set[Point] = set()
                fresh = touched[lvl][owner]
                order = sorted(s for s in by_step if s != "end") + ["end"]
                for step in order:
                    for sets in by_step.get(step, {}).values():
                        for words in sets:
                            counts.updates += len(words)
                            counts.reads += len(words) - len((words - written) & fresh)
                            written |= words
            network[name][role] = drains + child_fills
        else:
            assert all(len(sets) == 1 for sets in sent.values()), "a group disagrees"
            counts.reads = sum(len(words) for sets in sent.values() for words in sets)
            network[name][role] = child_fills - peers.get((lvl, child), (0, 1))[0]
    return peers


def _link_loop(loops: list[_Loop], child: int, axis: str) -> int | None:
    """Position of the innermost spatial loop on ``axis`` right above ``child``."""
    found = None
    for i, lp in enumerate(loops):
        if lp.spatial and lp.level == child - 1 and lp.axis == axis and lp.factor > 1:
            found = i
    return found


def _linked(
    loops: list[_Loop],
    boundary: list[int],
    child: int,
    axis: str,
    walks: dict[Point, _Walk],
    group_key: list[int],
    key_of,  # noqa: ANN001
) -> set[tuple[Point, Point]]:
    """The (child instance, step) pairs that take their new tile from a neighbour."""
    pos = _link_loop(loops, child, axis)
    temporal = [i for i in range(boundary[child]) if not loops[i].spatial]
    moving = [k for k, i in enumerate(temporal) if loops[i].factor > 1]
    if pos is None or not moving:
        return set()
    inner = moving[-1]
    child_inst = [i for i in range(boundary[child]) if loops[i].spatial]
    at = child_inst.index(pos)
    order = sorted({step for walk in walks.values() for step in walk.fetched})
    linked: set[tuple[Point, Point]] = set()
    for prev, step in zip(order, order[1:], strict=False):
        if step[:inner] != prev[:inner] or step[inner] != prev[inner] + 1:
            continue  # an outer loop moved: not a step of the innermost loop
        now: set[Point] = set()
        for inst, walk in walks.items():
            words = walk.fetched.get(step)
            if not words or not walk.whole[step]:
                continue
            for delta in (-1, 1):
                near = inst[:at] + (inst[at] + delta,) + inst[at + 1 :]
                if near in walks and walks[near].fetched.get(prev) == words:
                    now.add(inst)

        # Timeloop's test: links only if the parent then sends strictly fewer words.
        def distinct(skip: set[Point], step: Point = step) -> int:
            groups: dict[Point, set[frozenset[Point]]] = defaultdict(set)
            for inst, walk in walks.items():
                if inst not in skip and walk.fetched.get(step):
                    groups[key_of(inst, group_key)].add(frozenset(walk.fetched[step]))
            return sum(len(w) for sets in groups.values() for w in sets)

        if now and distinct(now) < distinct(set()):
            linked |= {(inst, step) for inst in now}
    return linked
