"""Fuzzing the mappers with hypothesis: random layers on random targets.

Invariants, whatever the draw: a mapper returns a mapping that validates
(``joule.cost.validate_mapping``) and whose reported cost is the model's, or
a user-facing ``JouleError`` naming why none fits (never a crash); its energy is
at least the compulsory lower bound; on small layers the model's counts equal
the reference simulator's; the layer's IR text round-trips. Targets get random
capacities so that tight, infeasible and bypassing hierarchies all occur.

``JOULE_FUZZ_EXAMPLES=500 pytest tests/test_fuzz.py`` runs a long search.
"""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joule.cost import evaluate, validate_mapping
from joule.errors import JouleError
from joule.ir import parse_loopnest, print_loopnest
from joule.ir.loopnest import LoopNest
from joule.passes.dataflow import DATAFLOWS, space_constraints
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions
from joule.targets.spec import Target
from test_cost_vs_simulator import MAX_MACS, assert_model_matches_simulator, layers, targets

EXAMPLES = int(os.environ.get("JOULE_FUZZ_EXAMPLES", "60"))
EXHAUSTIVE_MAX_POINTS = 5_000  # larger mapspaces get the random mapper (CI time)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="JOULE_FUZZ_EXAMPLES" not in os.environ,  # CI: the same examples every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@st.composite
def sized_targets(draw: st.DrawFn) -> Target:
    """The simulator test's targets, with a random capacity (or none) on each inner level."""
    target = draw(targets())
    levels = [target.levels[0]]
    for level in target.levels[1:]:
        capacity = draw(st.one_of(st.none(), st.integers(1, 64)))
        levels.append(dataclasses.replace(level, capacity_words=capacity))
    return dataclasses.replace(target, levels=tuple(levels))


def _check_result(nest: LoopNest, target: Target, mapper: str, dataflow: str) -> None:
    options = SearchOptions(samples=60, time_limit_s=0.05)
    constraints = space_constraints(nest, target, dataflow)
    if mapper == "exhaustive" and MapSpace(nest, target, constraints).size > EXHAUSTIVE_MAX_POINTS:
        mapper = "random"
    try:
        result = map_layer(nest, target, constraints, mapper=mapper, options=options)
    except JouleError as err:  # no mapping fits: said so, naming the target
        assert "mapped" in err.what or "mapping" in err.what, err.message()
        return
    validate_mapping(nest, target, result.mapping)
    cost = evaluate(nest, target, result.mapping)
    assert result.cost == cost
    assert cost.energy_pj >= cost.lower_bound_pj * (1 - 1e-9)
    if nest.macs <= MAX_MACS:
        assert_model_matches_simulator(nest, target, result.mapping)


@FUZZ
@given(
    layers(), sized_targets(), st.sampled_from(["random", "exhaustive"]), st.sampled_from(DATAFLOWS)
)
def test_mappings_are_valid_bounded_and_match_the_simulator(
    nest: LoopNest, target: Target, mapper: str, dataflow: str
) -> None:
    _check_result(nest, target, mapper, dataflow)


@settings(
    max_examples=max(4, EXAMPLES // 10), deadline=None, suppress_health_check=list(HealthCheck)
)
@given(layers(), sized_targets())
def test_cpsat_mappings_are_valid_bounded_and_match_the_simulator(
    nest: LoopNest, target: Target
) -> None:
    _check_result(nest, target, "cpsat", "free")


def _well_formed(nest: LoopNest) -> bool:
    # The simulator test's generator can pad a dilated window past its input
    # (shape -1); the IR parser rightly refuses such a tensor, so skip those.
    return all(extent >= 1 for t in nest.tensors for extent in t.shape)


@FUZZ
@given(layers().filter(_well_formed))
def test_ir_text_round_trips(nest: LoopNest) -> None:
    text = print_loopnest(nest)
    parsed = parse_loopnest(text)
    assert print_loopnest(parsed) == text
    assert parsed.signature() == nest.signature()
    assert parsed.macs == nest.macs


def test_fuzz_examples_stay_modest_by_default() -> None:
    # The default run must fit CI's budget; long searches are opt-in.
    if "JOULE_FUZZ_EXAMPLES" not in os.environ:
        assert EXAMPLES <= 100
    else:
        pytest.skip("long run requested")
