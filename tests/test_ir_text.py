"""The loop-nest IR's text and JSON forms round-trip, and padding is read from shapes."""

import pytest
from joule.errors import IRParseError
from joule.ir import AffineExpr, LoopNest, parse_loopnest, print_loopnest
from joule.ir.builders import conv2d, matmul

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
