"""Joule's canonical dim names, read off the structure of the accesses (not the op name).

- convolution-like (an input axis adds a spatial and a reduction dim: a sliding
  window): N, G, K, C, P, Q, R, S as in ``joule.ir.builders.conv2d``; a
  depthwise conv gets K = 1 so grouped and depthwise read alike;
- matmul-like: batch dims B0, B1, ..., then M (rows of the first operand),
  N (columns of the second) and K (the reduction);
- anything else keeps TVM's iter var names, upper-cased.
"""

from __future__ import annotations

from dataclasses import dataclass

from joule.ir.affine import AffineExpr

_CONV_ORDER = ("N", "G", "K", "C", "P", "Q", "R", "S")


@dataclass(frozen=True)
class Canonical:
    """Renamed dims (canonical order) and projections (output, input, weight)."""

    dims: tuple[tuple[str, int], ...]
    reduction: frozenset[str]
    projections: tuple[tuple[AffineExpr, ...], ...]
    source: dict[str, str]  # canonical dim -> TIR iter var ("" for a synthesized dim)


def canonicalize(
    dims: tuple[tuple[str, int], ...],
    reduction: frozenset[str],
    projections: tuple[tuple[AffineExpr, ...], ...],
) -> Canonical:
    """Rename the dims of a MAC nest whose tensors are (output, input, weight)."""
    uses = {
        d: frozenset(i for i, p in enumerate(projections) for ax in p if d in ax.dims)
        for d, _ in dims
    }
    extra: list[tuple[str, int]] = []
    rename = _conv_names(dims, reduction, projections, uses)
    if rename is not None:
        if "K" not in rename.values() and "G" in rename.values():
            extra.append(("K", 1))  # depthwise: one output channel per group
        return _apply(dims, reduction, projections, rename, extra, _CONV_ORDER.index)
    rename = _matmul_names(dims, reduction, projections, uses)
    if rename is not None:
        return _apply(dims, reduction, projections, rename, extra, _matmul_key)
    rename = {d: d.upper() for d, _ in dims}
    return _apply(dims, reduction, projections, rename, extra, None)


def _conv_names(dims, reduction, projections, uses) -> dict[str, str] | None:
    # A window axis adds an output position (read by output and input only) and a tap.
    windows = [
        ax
        for ax in projections[1]
        if any(d not in reduction and uses[d] == {0, 1} for d in ax.dims)
        and any(d in reduction for d in ax.dims)
    ]
    if not windows or len(windows) > 2:
        return None
    names: dict[str, str] = {}
    for ax, (out_name, win_name) in zip(windows, (("P", "R"), ("Q", "S")), strict=False):
        spatial = [d for d in ax.dims if d not in reduction]
        reduce = [d for d in ax.dims if d in reduction]
        if len(spatial) != 1 or len(reduce) != 1 or spatial[0] in names or reduce[0] in names:
            return None
        names[spatial[0]] = out_name
        names[reduce[0]] = win_name
    rest = [d for d, _ in dims if d not in names]
    channels = [d for d in rest if d in reduction]
    if len(channels) != 1:
        return None
    names[channels[0]] = "C"
    by_use = {frozenset({0, 1, 2}): "G", frozenset({0, 2}): "K", frozenset({0, 1}): "N"}
    for d in rest:
        if d in reduction:
            continue
        label = by_use.get(uses[d])
        if label is None or label in names.values():
            return None
        names[d] = label
    return names


def _matmul_names(dims, reduction, projections, uses) -> dict[str, str] | None:
    out_axes = {d: i for i, ax in enumerate(projections[0]) for d in ax.dims}
    reduce = [d for d, _ in dims if d in reduction]
    spatial = [d for d, _ in dims if d not in reduction]
    if not reduce or any(d not in out_axes for d in spatial):
        return None
    names: dict[str, str] = {}
    if len(reduce) == 1:
        names[reduce[0]] = "K"
    else:
        names.update({d: f"K{i}" for i, d in enumerate(reduce)})
    rows = sorted((d for d in spatial if uses[d] == {0, 1}), key=out_axes.get)
    cols = sorted((d for d in spatial if uses[d] == {0, 2}), key=out_axes.get)
    if rows:
        names[rows[-1]] = "M"
    if cols:
        names[cols[-1]] = "N"
    batch = sorted((d for d in spatial if d not in names), key=out_axes.get)
    names.update({d: f"B{i}" for i, d in enumerate(batch)})
    return names


def _matmul_key(name: str) -> tuple[int, int]:
    if name[0] == "B":
        return (0, int(name[1:]))
    if name in ("M", "N"):
        return (1, "MN".index(name))
    return (2, int(name[1:] or 0))


def _apply(dims, reduction, projections, rename, extra, key) -> Canonical:
    canonical = [(rename[d], e) for d, e in dims] + extra
    if key is not None:
        canonical.sort(key=lambda de: key(de[0]))
    rank = {d: i for i, (d, _) in enumerate(canonical)}
    new_projections = []
    for t, proj in enumerate(projections):
        axes = []
        for ax in proj:
            coeffs = {rename[d]: c for d, c in ax.terms}
            if extra and t != 1 and "G" in coeffs:
                coeffs["K"] = 1  # depthwise: output channel = G + K with K = 1
            terms = sorted(coeffs.items(), key=lambda dc: rank[dc[0]])
            axes.append(AffineExpr(tuple(terms), ax.offset))
        new_projections.append(tuple(axes))
    origin = {rename[d]: d for d, _ in dims}
    source = {d: origin.get(d, "") for d, _ in canonical}
    return Canonical(
        tuple(canonical),
        frozenset(rename[d] for d in reduction),
        tuple(new_projections),
        source,
    )
