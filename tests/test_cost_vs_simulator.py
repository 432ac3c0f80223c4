"""The analytical model must count exactly what the reference simulator counts.

Hypothesis draws (layer, target, mapping) triples: convolutions with stride 1
and 2, dilation 2, padding, grouped and depthwise; matmuls and batched
matmuls; targets of 2-4 levels with random bypass, X/Y fan-outs, with and
without multicast and spatial reduction; mappings from random factorisations of
every dim over the temporal and spatial slots, in random loop orders. Reads,
fills and updates of every tensor at every level, network words and the MAC
count must agree exactly, and the energy must be the doc's sum over them.

``JOULE_SIM_EXAMPLES=2000 pytest tests/test_cost_vs_simulator.py`` runs the big
search; the default is small enough for CI.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joule.cost import evaluate
from joule.ir.builders import conv2d, matmul
from joule.ir.loopnest import ROLES, LoopNest
from joule.mapping import LevelLoops, Loop, Mapping
from joule.targets.spec import Network, StorageLevel, Target
from simulator import simulate

EXAMPLES = int(os.environ.get("JOULE_SIM_EXAMPLES", "150"))
MAX_MACS = 2500


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def layers(draw: st.DrawFn) -> LoopNest:
    """A small layer of one of the kinds the model must handle."""
    kind = draw(st.sampled_from(["conv", "conv", "strided", "dilated", "grouped", "mm", "bmm"]))
    small = st.integers(1, 4)
    if kind == "mm":
        return matmul(m=draw(small), n=draw(small), k=draw(st.integers(1, 6)))
    if kind == "bmm":
        return matmul(m=draw(small), n=draw(small), k=draw(small), batch=(draw(st.integers(2, 3)),))
    stride = 2 if kind == "strided" else draw(st.sampled_from([1, 1, 2]))
    dilation = 2 if kind == "dilated" else 1
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    p, q = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    pad = draw(st.integers(0, min(r, s) // 2 * dilation))
    if kind == "grouped":
        depthwise = draw(st.booleans())
        k, c = (1, 1) if depthwise else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        groups = draw(st.integers(2, 4))
        return conv2d(
            k=k, c=c, p=p, q=q, r=r, s=s, stride=stride, dilation=dilation, pad=pad, groups=groups
        )
    n = draw(st.sampled_from([1, 1, 2]))
    k, c = draw(small), draw(st.integers(1, 3))
    return conv2d(n=n, k=k, c=c, p=p, q=q, r=r, s=s, stride=stride, dilation=dilation, pad=pad)


@st.composite
def targets(draw: st.DrawFn) -> Target:
    """2-4 levels, DRAM keeps all, inner levels keep random subsets, random fan-outs."""
    nlev = draw(st.integers(2, 4))
    levels = []
    mx = my = 1
    for i in range(nlev):
        if i == 0:
            keeps = frozenset(ROLES)
        else:
            keeps = frozenset(
                draw(st.lists(st.sampled_from(ROLES), min_size=1, max_size=3, unique=True))
            )
            mx *= draw(st.sampled_from([1, 1, 2, 3]))
            my *= draw(st.sampled_from([1, 1, 2]))
        pj = st.integers(0, 9).map(float)
        levels.append(
            StorageLevel(
                name=f"L{i}",
                keeps=keeps,
                instances=mx * my,
                mesh_x=mx,
                mesh_y=my,
                read_pj=draw(pj),
                write_pj=draw(pj),
                update_pj=draw(pj),
                network=Network(
                    multicast=draw(st.booleans()),
                    spatial_reduction=draw(st.booleans()),
                    hop_energy_pj=draw(pj),
                ),
            )
        )
    return Target("random", "hypothesis target", tuple(levels), mac_energy_pj=1.0)


@st.composite
def mappings(draw: st.DrawFn, nest: LoopNest, target: Target) -> Mapping:
    """Each prime factor of each dim goes to a random temporal or spatial slot."""
    nlev = len(target.levels)
    room = {(i, ax): f for i in range(nlev) for ax, f in zip("XY", target.fanout(i), strict=True)}
    temporal: list[dict[str, int]] = [{} for _ in range(nlev)]
    spatial: list[dict[tuple[str, str], int]] = [{} for _ in range(nlev)]
    for dim, extent in nest.dims:
        for prime in _prime_factors(extent):
            level = draw(st.integers(0, nlev - 1))
            axis = draw(st.sampled_from(["T", "T", "X", "Y"]))
            if axis != "T" and room[(level, axis)] % prime == 0:
                room[(level, axis)] //= prime
                key = (dim, axis)
                spatial[level][key] = spatial[level].get(key, 1) * prime
            else:
                temporal[level][dim] = temporal[level].get(dim, 1) * prime
    levels = []
    for i in range(nlev):
        loops = [Loop(d, f) for d, f in temporal[i].items()]
        if draw(st.booleans()):  # factor-1 loops must be harmless
            loops.append(Loop(draw(st.sampled_from(nest.dim_names)), 1))
        loops = draw(st.permutations(loops))
        sloops = draw(st.permutations([Loop(d, f, ax) for (d, ax), f in spatial[i].items()]))
        levels.append(LevelLoops(target.levels[i].name, tuple(loops), tuple(sloops)))
    return Mapping(tuple(levels))


@st.composite
def triples(draw: st.DrawFn) -> tuple[LoopNest, Target, Mapping]:
    nest = draw(layers().filter(lambda n: n.macs <= MAX_MACS))
    target = draw(targets())
    return nest, target, draw(mappings(nest, target))


def _doc_energy(sim, target: Target) -> float:  # noqa: ANN001 - SimResult
    """docs/cost-model.md's energy sum, applied to the simulator's counts."""
    energy = sim.macs * target.mac_energy_pj
    for lvl in target.levels:
        for role, c in sim.accesses[lvl.name].items():
            energy += c.reads * lvl.read_pj + c.fills * lvl.write_pj + c.updates * lvl.update_pj
            energy += sim.network_words[lvl.name].get(role, 0) * lvl.network.hop_energy_pj
    names = [lvl.name for lvl in target.levels]
    for parent, roles in sim.link_words.items():
        # The links of the first fan-out at or below the sending parent (the child's).
        links = next(
            lvl.network.links
            for lvl in target.levels[names.index(parent) :]
            if lvl.network.links is not None
        )
        energy += sum(roles.values()) * links.energy_pj
    return energy


def _nonzero(words: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {lvl: {r: w for r, w in roles.items() if w} for lvl, roles in words.items()}


def assert_model_matches_simulator(nest: LoopNest, target: Target, mapping: Mapping) -> None:
    """Every count of the model equals the simulator's, and the energy is their doc sum."""
    result = evaluate(nest, target, mapping)
    sim = simulate(nest, target, mapping)
    context = f"\nlayer {nest.to_dict()['dims']} {nest.name}\nmapping:\n{mapping.loops_text()}"
    assert result.macs == sim.macs == nest.macs, context
    model = {
        lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
        for lvl, roles in result.accesses.items()
    }
    assert model == sim.as_tuples(), context
    assert _nonzero(result.network_words) == _nonzero(sim.network_words), context
    assert result.energy_pj == pytest.approx(_doc_energy(sim, target), rel=1e-9, abs=1e-6)
    assert result.utilization == pytest.approx(nest.macs / (result.cycles * target.pes))
    assert result.compute_cycles == sim.compute_cycles, context
    assert result.cycles >= result.compute_cycles


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(triples())
def test_model_counts_equal_simulator_counts(triple: tuple[LoopNest, Target, Mapping]) -> None:
    assert_model_matches_simulator(*triple)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(triples())
def test_no_mapping_costs_less_than_the_compulsory_bound(
    triple: tuple[LoopNest, Target, Mapping],
) -> None:
    cost = evaluate(*triple)
    assert cost.energy_pj >= cost.lower_bound_pj * (1 - 1e-12)


# Multicast serves only children that fetch identical data (they differ in dims
# irrelevant to the tensor), as in Timeloop: neither the gaps of a strided union
# nor the overlap of sliding windows changes the parent's reads.


def _two_pe_target(multicast: bool = True) -> Target:
    return Target(
        "two-pe",
        "DRAM feeding two input buffers on the Y axis",
        (
            StorageLevel("L0", frozenset(ROLES), network=Network(multicast=multicast)),
            StorageLevel("L1", frozenset({"input"}), instances=2, mesh_x=1, mesh_y=2),
        ),
        mac_energy_pj=1.0,
    )


def test_multicast_reads_skip_the_gap_between_strided_children() -> None:
    # Stride 2, Q split over 2 PEs: PE y needs input column 2*(2*q + y), so the
    # two PEs need columns {0, 2} then {4, 6}; columns 1 and 5 lie in the union
    # box but nobody needs them. 2 C x 2 Q steps x 2 words = 8 parent reads
    # (a bounding-box union would read 12).
    nest = conv2d(k=1, c=2, p=1, q=4, r=1, s=1, stride=2)
    mapping = Mapping(
        (
            LevelLoops("L0", (Loop("C", 2), Loop("Q", 2)), (Loop("Q", 2, "Y"),)),
            LevelLoops("L1"),
        )
    )
    assert simulate(nest, _two_pe_target(), mapping).accesses["L0"]["input"].reads == 8
    assert evaluate(nest, _two_pe_target(), mapping).accesses["L0"]["input"].reads == 8


def test_multicast_does_not_merge_sliding_windows_of_different_children() -> None:
    # Q split over 2 PEs, S (width 2) walked outside them: PE y needs column
    # y + s at step s, i.e. {0, 1} then {1, 2}. PE 0 fetches column 1 at step 1,
    # which PE 1 fetched at step 0: it is read again, 2 + 2 = 4 parent reads
    # (a bounding-box union would read 3).
    nest = conv2d(k=1, c=1, p=1, q=2, r=1, s=2)
    mapping = Mapping(
        (
            LevelLoops("L0", (Loop("S", 2),), (Loop("Q", 2, "Y"),)),
            LevelLoops("L1"),
        )
    )
    assert simulate(nest, _two_pe_target(), mapping).accesses["L0"]["input"].reads == 4
    assert evaluate(nest, _two_pe_target(), mapping).accesses["L0"]["input"].reads == 4
