"""Read a Timeloop v0.4 problem (any YAML with a top-level ``problem:`` key) as a LoopNest.

Timeloop's dims N M C P Q R S (G) become Joule's N K C P Q R S (G); strides and
dilations come from the instance (coefficients default as the shape says). The
tensors keep Timeloop's projections, so the input's extent is
``(P-1)*stride + (R-1)*dilation + 1``: Timeloop has no padding, and neither has
the nest read here. Files in the layer_shapes style without a ``shape:`` get
Timeloop's standard CNN layer shape. Joule's own exports keep Joule's dim names
in ``joule-dims.yaml`` beside the Timeloop files (Timeloop reads single letters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from joule.errors import IRParseError, JouleError
from joule.ir.affine import AffineExpr
from joule.ir.loopnest import LoopNest, Role, Tensor

# Timeloop dim name -> Joule dim name.
DIM_NAMES = {"M": "K"}
# Beside Joule's Timeloop files: ``joule_dims: {timeloop: joule}``.
DIMS_FILE = "joule-dims.yaml"
# Joule's canonical loop order for convolutions.
_CONV_ORDER = ("N", "G", "K", "C", "P", "Q", "R", "S")
_ROLES: dict[str, Role] = {"weights": "weight", "inputs": "input", "outputs": "output"}
_PROBLEM_HINT = (
    "expected problem: {instance: {DIM: extent, ...}, shape: {dimensions, "
    "coefficients, data_spaces}}"
)

# Timeloop's CNN_Layer shape (problem_base.yaml without G), for files that omit it.
CNN_SHAPE: dict[str, Any] = {
    "name": "CNN_Layer",
    "dimensions": ["C", "M", "R", "S", "N", "P", "Q"],
    "coefficients": [
        {"name": "Wstride", "default": 1},
        {"name": "Hstride", "default": 1},
        {"name": "Wdilation", "default": 1},
        {"name": "Hdilation", "default": 1},
    ],
    "data_spaces": [
        {"name": "Weights", "projection": [[["C"]], [["M"]], [["R"]], [["S"]]]},
        {
            "name": "Inputs",
            "projection": [
                [["N"]],
                [["C"]],
                [["R", "Wdilation"], ["P", "Wstride"]],
                [["S", "Hdilation"], ["Q", "Hstride"]],
            ],
        },
        {"name": "Outputs", "projection": [[["N"]], [["M"]], [["Q"]], [["P"]]], "read_write": True},
    ],
}


def joule_dim(name: str, names: dict[str, str] | None = None) -> str:
    """Timeloop's dim name in Joule's vocabulary (M -> K, or the file's ``joule_dims`` table)."""
    if names:
        return names.get(name, name)
    return DIM_NAMES.get(name, name)


def dims_beside(path: Path) -> dict[str, str] | None:
    """The ``joule_dims`` table of the ``joule-dims.yaml`` next to ``path``, if there is one."""
    file = path.parent / DIMS_FILE
    if not file.is_file():
        return None
    hint = "joule-dims.yaml holds joule_dims: {TIMELOOP_DIM: JOULE_DIM, ...}"
    try:
        data = yaml.safe_load(file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        why = " ".join(str(exc).split())
        raise IRParseError(
            f"cannot read Joule's dim names: {why}", where=str(file), hint=hint
        ) from None
    names = data.get("joule_dims") if isinstance(data, dict) else None
    if not isinstance(names, dict):
        raise IRParseError("no 'joule_dims:' mapping", where=str(file), hint=hint)
    return {str(k): str(v) for k, v in names.items()}


def load_problem(path: str | Path, *, name: str | None = None) -> LoopNest:
    """The loop nest of the Timeloop problem in ``path``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise IRParseError(
            f"cannot read Timeloop problem: {exc.strerror}", where=str(path)
        ) from None
    except yaml.YAMLError as exc:
        raise IRParseError(
            f"Timeloop problem is not valid YAML: {yaml_problem(exc)}",
            where=str(path),
            hint=_PROBLEM_HINT,
        ) from None
    except UnicodeDecodeError:
        raise IRParseError(
            "the Timeloop problem is not a text file (not UTF-8)",
            where=str(path),
            hint=_PROBLEM_HINT,
        ) from None
    names = dims_beside(path)
    return problem_from_dict(data, source=str(path), name=name or _stem(path), names=names)


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML syntax error on one line, with its line number (PyYAML's text spans several)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or " ".join(str(err).split())
    return f"{problem} (line {mark.line + 1})" if mark is not None else problem


def problem_from_dict(
    data: Any,
    *,
    source: str = "problem",
    name: str = "layer",
    names: dict[str, str] | None = None,
) -> LoopNest:
    """Build the LoopNest from parsed YAML holding a ``problem:`` key.

    ``names``: Timeloop dim -> Joule dim (default: Timeloop's M is Joule's K).
    """
    if not isinstance(data, dict) or not isinstance(data.get("problem"), dict):
        raise IRParseError(
            "no top-level 'problem:' mapping",
            where=source,
            hint="give a Timeloop v0.4 problem file (e.g. parsed-processed-input.yaml)",
        )
    problem = data["problem"]
    try:
        return _build(problem, source, name, names)
    except JouleError as err:
        if err.where:
            raise
        raise type(err)(err.what, where=source, hint=err.hint or _PROBLEM_HINT) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IRParseError(
            f"malformed Timeloop problem ({type(exc).__name__}: {exc})",
            where=source,
            hint=_PROBLEM_HINT,
        ) from None


def _build(
    problem: dict[str, Any], source: str, name: str, names: dict[str, str] | None = None
) -> LoopNest:
    instance = problem.get("instance")
    if not isinstance(instance, dict):
        raise IRParseError("problem has no 'instance:' mapping", where=source)
    shape = problem.get("shape") or CNN_SHAPE
    tl_dims = [str(d) for d in shape["dimensions"]]
    coeffs = {str(c["name"]): int(c.get("default", 1)) for c in shape.get("coefficients", [])}
    for key in coeffs:
        if key in instance:
            coeffs[key] = int(instance[key])
    extents: dict[str, int] = {}
    for d in tl_dims:
        if d not in instance:
            raise IRParseError(
                f"problem instance gives no extent for dim {d}",
                where=source,
                hint=f"give every dim of the shape: {tl_dims}",
            )
        extents[joule_dim(d, names)] = int(instance[d])

    tensors = []
    for space in shape["data_spaces"]:
        tensors.append(_tensor(space, coeffs, tl_dims, extents, source, names))
    if [t.role for t in tensors].count("output") != 1:
        raise IRParseError("problem needs exactly one read_write (output) data space", where=source)

    names = list(extents)
    if set(names) <= set(_CONV_ORDER):
        names = [d for d in _CONV_ORDER if d in extents]
    output = next(t for t in tensors if t.role == "output")
    reduction = frozenset(names) - output.relevant_dims
    is_conv = shape.get("name") == "CNN_Layer" or set(names) >= {"K", "C", "P", "Q", "R", "S"}
    attrs = tuple(sorted((k, str(v)) for k, v in coeffs.items()))
    return LoopNest(
        name=name,
        dims=tuple((d, extents[d]) for d in names),
        reduction=reduction,
        tensors=tuple(sorted(tensors, key=lambda t: ("output", "input", "weight").index(t.role))),
        op="Conv" if is_conv else str(shape.get("name", "")),
        attrs=attrs,
    )


def _tensor(
    space: dict[str, Any],
    coeffs: dict[str, int],
    tl_dims: list[str],
    extents: dict[str, int],
    source: str,
    names: dict[str, str] | None = None,
) -> Tensor:
    tname = str(space["name"])
    axes = []
    for axis in space["projection"]:
        if isinstance(axis, str):
            raise IRParseError(
                f"data space {tname}: string projections ({axis!r}) are not supported",
                where=source,
                hint="use the list form: [[[R, Wdilation], [P, Wstride]], ...]",
            )
        terms: dict[str, int] = {}
        for term in axis:
            term = [term] if isinstance(term, str) else list(term)
            dims = [t for t in term if isinstance(t, str) and t in tl_dims]
            if len(dims) != 1:
                raise IRParseError(
                    f"data space {tname}: term {term} must name exactly one dim",
                    where=source,
                )
            factor = 1
            for t in term:
                if isinstance(t, int):
                    factor *= t
                elif t not in tl_dims:
                    if t not in coeffs:
                        raise IRParseError(
                            f"data space {tname}: unknown coefficient {t!r}",
                            where=source,
                            hint=f"declare it under shape.coefficients (known: {sorted(coeffs)})",
                        )
                    factor *= coeffs[t]
            d = joule_dim(dims[0], names)
            terms[d] = terms.get(d, 0) + factor
        axes.append(AffineExpr.of(terms))
    if space.get("read_write"):
        role: Role = "output"
    else:
        role = _ROLES.get(tname.lower(), "weight" if "weight" in tname.lower() else "input")
    shape = tuple(sum(abs(c) * (extents[d] - 1) for d, c in axis.terms) + 1 for axis in axes)
    return Tensor(tname, role, 8, tuple(axes), shape)


def _stem(path: Path) -> str:
    """A layer name from the file: the run folder for parsed-processed-input.yaml."""
    if path.name.startswith("parsed-processed-input"):
        return path.parent.name
    return path.stem.split(".")[0]
