"""The IR's text forms round-trip (loop nests, mapspaces, mappings; JSON too for nests),
and padding is read from shapes."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from joule.errors import IRParseError
from joule.ir import AffineExpr, LoopNest, parse_loopnest, print_loopnest
from joule.ir.builders import conv2d, matmul
from joule.mapping import LevelLoops, Loop, Mapping
from joule.module_text import parse_mapping, parse_mapspace, print_mapping, print_mapspace
from joule.passes.dataflow import DATAFLOWS, space_constraints
from joule.passes.mapper.mapspace.space import SpaceConstraints
from joule.targets import load_target

NESTS = [
    conv2d("conv1", k=64, c=3, p=112, q=112, r=7, s=7, stride=2, pad=3),
    conv2d("dilated", k=4, c=4, p=6, q=6, r=3, s=3, dilation=2, pad=2),
    conv2d("grouped", k=2, c=3, p=5, q=5, r=3, s=3, groups=4, pad=1),
    matmul("attn/qk", m=16, n=16, k=8, batch=(2, 4)),
]


@pytest.mark.parametrize("nest", NESTS, ids=lambda n: n.name)
def test_text_form_round_trips(nest: LoopNest) -> None:
    text = print_loopnest(nest)
    assert parse_loopnest(text) == nest
    assert print_loopnest(parse_loopnest(text)) == text


@pytest.mark.parametrize("nest", NESTS, ids=lambda n: n.name)
def test_json_form_round_trips(nest: LoopNest) -> None:
    assert LoopNest.from_dict(nest.to_dict()) == nest


def test_names_with_onnx_punctuation_survive_text() -> None:
    nest = matmul("/encoder/layer.0/attention/MatMul", m=2, n=2, k=2)
    assert parse_loopnest(print_loopnest(nest)).name == nest.name


@pytest.mark.parametrize("text", ["2*P + R - 3", "P", "-Q + 4", "3", "G + K"])
def test_affine_expressions_round_trip(text: str) -> None:
    assert str(AffineExpr.parse(text)) == text


def test_padding_is_read_from_index_range_and_shape() -> None:
    nest = conv2d("c", k=1, c=1, p=4, q=4, r=3, s=3, pad=1)
    assert nest.padding(nest.tensor("input")) == ((0, 0), (0, 0), (1, 1), (1, 1))


def test_signature_ignores_names_but_not_shapes() -> None:
    a = conv2d("a", k=8, c=8, p=4, q=4, r=3, s=3)
    b = conv2d("b", k=8, c=8, p=4, q=4, r=3, s=3)
    c = conv2d("c", k=8, c=8, p=4, q=4, r=3, s=3, stride=2)
    assert a.signature() == b.signature() != c.signature()


def test_parse_error_names_the_line() -> None:
    text = print_loopnest(NESTS[0]).replace("dims N=1", "dims N=x")
    with pytest.raises(IRParseError, match="line 2"):
        parse_loopnest(text)


# -- mapspace and mapping blocks (joule.module_text) -----------------------------------

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,3}", fullmatch=True)
LEVEL_NAME = st.one_of(IDENT, st.text(min_size=1, max_size=8))  # any text: quoted when needed


def _loop(axis: str | None) -> st.SearchStrategy[Loop]:
    return st.builds(Loop, IDENT, st.integers(1, 10**6), st.just(axis))


MAPPINGS = st.builds(
    Mapping,
    st.lists(
        st.builds(
            LevelLoops,
            LEVEL_NAME,
            st.lists(_loop(None), max_size=4).map(tuple),
            st.lists(st.one_of(_loop("X"), _loop("Y")), max_size=3).map(tuple),
        ),
        max_size=5,
    ).map(tuple),
)


@st.composite
def mapspaces(draw: st.DrawFn) -> tuple[SpaceConstraints, list[str], list[str]]:
    """Constraints, level names and the nest's dim order."""
    dims = draw(st.lists(IDENT, unique=True, max_size=7))
    levels = draw(st.lists(LEVEL_NAME, min_size=1, max_size=5))
    subsets = st.frozensets(st.sampled_from(dims)) if dims else st.just(frozenset())
    orders = st.none() | st.permutations(dims).map(tuple)

    def per_level(strategy: st.SearchStrategy) -> tuple:
        return tuple(draw(strategy) for _ in levels)

    constraints = SpaceConstraints(
        temporal=per_level(subsets),
        spatial_x=per_level(subsets),
        spatial_y=per_level(subsets),
        permutation=per_level(orders),
        dataflow=draw(st.sampled_from(DATAFLOWS) | st.text(max_size=6)),
    )
    return constraints, levels, dims


@given(MAPPINGS)
def test_any_mapping_round_trips_through_its_text(mapping: Mapping) -> None:
    text = print_mapping(mapping)
    assert parse_mapping(text) == mapping
    assert print_mapping(parse_mapping(text)) == text


@given(mapspaces())
def test_any_mapspace_round_trips_through_its_text(
    case: tuple[SpaceConstraints, list[str], list[str]],
) -> None:
    constraints, levels, dims = case
    text = print_mapspace(constraints, levels, dims)
    assert parse_mapspace(text, levels) == constraints
    assert print_mapspace(parse_mapspace(text, levels), levels, dims) == text


@given(
    st.text(min_size=1, max_size=12),
    st.integers(1, 8),
    st.integers(1, 8),
    st.integers(1, 6),
    st.integers(1, 3),
    st.integers(1, 2),
)
def test_any_conv_nest_with_any_name_round_trips(
    name: str, k: int, c: int, p: int, r: int, stride: int
) -> None:
    nest = conv2d(name, k=k, c=c, p=p, q=p, r=r, s=r, stride=stride, pad=r // 2)
    text = print_loopnest(nest)
    assert parse_loopnest(text) == nest
    assert print_loopnest(parse_loopnest(text)) == text


def test_mapping_text_reads_as_written() -> None:
    text = """\
mapping {
  level DRAM: for K in 4, for C in 2
  level "Global Buffer": for P in 7, parallel-for K in 16 on X, parallel-for C in 2 on Y
  level RegFile:
}"""
    assert parse_mapping(text) == Mapping(
        (
            LevelLoops("DRAM", (Loop("K", 4), Loop("C", 2))),
            LevelLoops("Global Buffer", (Loop("P", 7),), (Loop("K", 16, "X"), Loop("C", 2, "Y"))),
            LevelLoops("RegFile"),
        )
    )
    assert print_mapping(parse_mapping(text)) == text


def test_a_temporal_loop_after_a_spatial_one_is_refused_with_its_line() -> None:
    text = "mapping {\n  level GLB: parallel-for K in 2 on X, for C in 3\n}"
    with pytest.raises(IRParseError, match="line 2"):
        parse_mapping(text)


def test_a_mapspace_for_other_levels_is_refused() -> None:
    nest = conv2d("c", k=4, c=4, p=4, q=4, r=3, s=3)
    target = load_target("eyeriss")
    names = [lvl.name for lvl in target.levels]
    text = print_mapspace(space_constraints(nest, target), names, nest.dim_names)
    with pytest.raises(IRParseError, match="levels"):
        parse_mapspace(text, names[:-1])
