"""Bind symbolic input dimensions before import, so every loop extent is a number."""

from __future__ import annotations

from collections.abc import Mapping

import onnx
from joule.errors import ModelError


def real_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (the tensors a caller feeds)."""
    initialized = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initialized]


def input_shapes(
    model: onnx.ModelProto,
    *,
    batch: int | None = None,
    dims: Mapping[str, int] | None = None,
    where: str = "",
) -> dict[str, list[int]]:
    """Static shapes of every graph input, binding ``dim_param``s from ``batch`` and ``dims``.

    ``batch`` binds the first dimension of an input when that dimension is
    symbolic; ``dims`` binds dimensions by their ONNX name. A dimension still
    unbound is an error that names the input and the flags that fix it.
    """
    dims = dict(dims or {})
    for name, value in [*dims.items(), *([("--batch", batch)] if batch is not None else [])]:
        if int(value) < 1:
            flag = name if name == "--batch" else f"--dim {name}={value}"
            raise ModelError(
                f"dimension {name} = {value} is not a positive size",
                where=f"{where}: {flag}" if where else flag,
                hint="give a size >= 1",
            )
    used: set[str] = set()
    shapes: dict[str, list[int]] = {}
    for value in real_inputs(model):
        kind = value.type.WhichOneof("value")
        if kind != "tensor_type":
            raise ModelError(
                f"graph input {value.name!r} is a {kind or 'untyped value'}, not a tensor",
                where=where,
                hint="Joule maps tensor programs; export the model with tensor inputs",
            )
        ttype = value.type.tensor_type
        if not ttype.HasField("shape"):
            raise ModelError(
                f"graph input {value.name!r} has no shape (unknown rank)",
                where=where,
                hint="re-export the model with input shapes (e.g. dynamic_axes only on the batch)",
            )
        shape: list[int] = []
        for axis, dim in enumerate(ttype.shape.dim):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                shape.append(int(dim.dim_value))
                continue
            label = dim.dim_param if dim.HasField("dim_param") else ""
            if label and label in dims:
                shape.append(int(dims[label]))
                used.add(label)
            elif axis == 0 and batch is not None:
                shape.append(int(batch))
            else:
                shown = f"'{label}'" if label else "(unnamed)"
                flag = f"--dim {label}=VALUE" if label else "--batch N"
                raise ModelError(
                    f"input {value.name!r} has a symbolic dimension {shown} at axis {axis} "
                    "that is not bound",
                    where=where,
                    hint=f"give its size with {flag}"
                    + (" (or --batch N for the first axis)" if axis == 0 and label else "")
                    + "; loop extents must be numbers to map a layer",
                )
        shapes[value.name] = shape
    unknown = sorted(set(dims) - used)
    if unknown:
        known = sorted(
            {
                d.dim_param
                for v in real_inputs(model)
                for d in v.type.tensor_type.shape.dim
                if d.HasField("dim_param")
            }
        )
        raise ModelError(
            f"no input has a symbolic dimension named {', '.join(unknown)}",
            where=where,
            hint=f"symbolic dimensions of this model: {', '.join(known) or 'none'}",
        )
    return shapes
