"""Target constraints are written with convolution dim names; other ops get the
convolution dim that plays the same part (which tensors index it)."""

from __future__ import annotations

from joule.ir.builders import conv2d, matmul
from joule.passes.canonicalize import drop_unit_dims
from joule.passes.mapper.mapspace.dim_classes import conv_classes


def test_a_convolution_keeps_its_names() -> None:
    nest = conv2d(k=4, c=3, p=5, q=5, r=3, s=3)
    assert conv_classes(nest) == {d: d for d in nest.dim_names}


def test_matmul_dims_take_the_convolution_part_they_play() -> None:
    # out[M, N] += a[M, K] * b[K, N]: K is reduced (conv C), N is an output channel
    # (conv K), M an output position (conv Q).
    assert conv_classes(matmul(m=8, n=16, k=32)) == {"M": "Q", "N": "K", "K": "C"}


def test_a_matmul_named_like_a_convolution_is_not_read_literally() -> None:
    # Gemm with batch 1: dropping the unit M leaves dims named N and K, which are
    # not the convolution's N and K (the reduction must not be unrolled as output
    # channels).
    nest = drop_unit_dims(matmul(m=1, n=1000, k=512))
    assert set(nest.dim_names) == {"N", "K"}
    assert conv_classes(nest) == {"N": "K", "K": "C"}
