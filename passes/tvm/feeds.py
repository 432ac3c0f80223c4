"""Seeded random values for every graph input of an ONNX model (data and, when absent, weights).

A shape-only model (weights as graph inputs, as the bundled models are) must
still compute finite, well-scaled numbers: the first input is the data
(standard normal); a weight gets ``N(0, 1/fan_in)``, a normalisation scale
``1 + 0.1 N``, a BatchNormalization variance ``U[0.5, 1.5)`` (a negative
variance would give NaN), as ``joule.models.graph`` initialises them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

_DTYPES = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.INT64: np.int64}


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers, in order (= the Relax ``main`` parameters)."""
    init = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in init]


def random_feeds(
    model: onnx.ModelProto, shapes: Mapping[str, Sequence[int]], *, seed: int = 0
) -> dict[str, np.ndarray]:
    """Name -> array for each graph input; ``shapes`` are the bound input shapes."""
    rng = np.random.default_rng(seed)
    roles = _consumer_roles(model)
    feeds: dict[str, np.ndarray] = {}
    for index, value in enumerate(graph_inputs(model)):
        shape = tuple(int(s) for s in shapes[value.name])
        dtype = _DTYPES.get(value.type.tensor_type.elem_type, np.float32)
        role = roles.get(value.name, "")
        if dtype is np.int64:
            array = np.zeros(shape, dtype)
        elif index == 0:
            array = rng.standard_normal(shape)
        elif role == "variance":
            array = 0.5 + rng.random(shape)
        elif role == "scale":
            array = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            array = rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        feeds[value.name] = np.asarray(array, dtype=dtype)
    return feeds


def _consumer_roles(model: onnx.ModelProto) -> dict[str, str]:
    roles: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "BatchNormalization" and len(node.input) >= 5:
            roles[node.input[4]] = "variance"
            roles.setdefault(node.input[1], "scale")
        elif node.op_type in ("LayerNormalization", "InstanceNormalization", "GroupNormalization"):
            if len(node.input) >= 2:
                roles.setdefault(node.input[1], "scale")
    return roles
