"""Loop nests from a few numbers: convolutions and matmuls written by hand, for tests and specs."""

from __future__ import annotations

from joule.ir.affine import AffineExpr
from joule.ir.loopnest import LoopNest, Tensor


def conv2d(
    name: str = "conv",
    *,
    n: int = 1,
    k: int,
    c: int,
    p: int,
    q: int,
    r: int,
    s: int,
    stride: int = 1,
    dilation: int = 1,
    pad: int = 0,
    groups: int = 1,
    bits: int = 8,
) -> LoopNest:
    """A 2-D convolution in Joule's dim names: N K C P Q R S, plus G when grouped.

    ``k`` and ``c`` are per group; ``p``, ``q`` the output size. Depthwise is
    ``groups=C, k=1, c=1``.
    """
    dims: list[tuple[str, int]] = [("N", n)]
    if groups > 1:
        dims.append(("G", groups))
    dims += [("K", k), ("C", c), ("P", p), ("Q", q), ("R", r), ("S", s)]

    def chan(per_group: int, dim: str) -> AffineExpr:
        if groups > 1:
            return AffineExpr.of({"G": per_group, dim: 1})
        return AffineExpr.dim(dim)

    h = (p - 1) * stride + (r - 1) * dilation + 1 - 2 * pad
    w = (q - 1) * stride + (s - 1) * dilation + 1 - 2 * pad
    inp = Tensor(
        "I",
        "input",
        bits,
        (
            AffineExpr.dim("N"),
            chan(c, "C"),
            AffineExpr.of({"P": stride, "R": dilation}, -pad),
            AffineExpr.of({"Q": stride, "S": dilation}, -pad),
        ),
        (n, c * groups, h, w),
    )
    wgt = Tensor(
        "W",
        "weight",
        bits,
        (chan(k, "K"), AffineExpr.dim("C"), AffineExpr.dim("R"), AffineExpr.dim("S")),
        (k * groups, c, r, s),
    )
    out = Tensor(
        "O",
        "output",
        bits,
        (AffineExpr.dim("N"), chan(k, "K"), AffineExpr.dim("P"), AffineExpr.dim("Q")),
        (n, k * groups, p, q),
    )
    return LoopNest(
        name=name,
        dims=tuple(dims),
        reduction=frozenset({"C", "R", "S"}),
        tensors=(out, inp, wgt),
        op="Conv",
    )


def matmul(
    name: str = "matmul", *, m: int, n: int, k: int, batch: tuple[int, ...] = (), bits: int = 8
) -> LoopNest:
    """``O[B.., M, N] += A[B.., M, K] * B[B.., K, N]``; batch dims are B0, B1, ..."""
    bdims = [(f"B{i}", b) for i, b in enumerate(batch)]
    bx = [AffineExpr.dim(d) for d, _ in bdims]
    dims = (*bdims, ("M", m), ("N", n), ("K", k))
    out = Tensor(
        "O", "output", bits, (*bx, AffineExpr.dim("M"), AffineExpr.dim("N")), (*batch, m, n)
    )
    a = Tensor("A", "input", bits, (*bx, AffineExpr.dim("M"), AffineExpr.dim("K")), (*batch, m, k))
    b = Tensor("B", "weight", bits, (*bx, AffineExpr.dim("K"), AffineExpr.dim("N")), (*batch, k, n))
    return LoopNest(
        name=name, dims=dims, reduction=frozenset({"K"}), tensors=(out, a, b), op="MatMul"
    )
