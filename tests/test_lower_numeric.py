"""Each lowered LoopNest computes what onnxruntime computes for the one-node ONNX model.

The reference interpreter below knows nothing about TVM or ONNX: it walks the
loop nest's iteration box, gathers each operand through its affine projection
(zero outside the real tensor: that is how padding is recorded), multiplies
and accumulates into the output with ``np.add.at``.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from joule.ir import LoopNest, Tensor
from joule.lower import lower_model
from onnx import TensorProto, helper


def evaluate(nest: LoopNest, arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Run the loop nest literally: out[proj_o(p)] += in[proj_i(p)] * w[proj_w(p)]."""
    grids = np.meshgrid(*[np.arange(e) for _, e in nest.dims], indexing="ij")
    point = dict(zip(nest.dim_names, grids, strict=True))

    def indices(t: Tensor) -> list[np.ndarray]:
        return [np.broadcast_to(ax.evaluate(point), grids[0].shape) for ax in t.projection]

    def gather(t: Tensor) -> np.ndarray:
        idx = indices(t)
        inside = np.ones(grids[0].shape, dtype=bool)
        for i, size in zip(idx, t.shape, strict=True):
            inside &= (i >= 0) & (i < size)
        clipped = tuple(np.clip(i, 0, size - 1) for i, size in zip(idx, t.shape, strict=True))
        return np.where(inside, arrays[t.name][clipped], 0.0)

    a, b = nest.operands
    out = np.zeros(nest.output.shape, dtype=np.float64)
    np.add.at(out, tuple(indices(nest.output)), gather(a) * gather(b))
    return out


def one_node_model(op: str, inputs: dict[str, list[int]], **attrs: object) -> onnx.ModelProto:
    node = helper.make_node(op, list(inputs), ["y"], name=f"the_{op.lower()}", **attrs)
    graph = helper.make_graph(
        [node],
        "one",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return onnx.shape_inference.infer_shapes(model)


CASES = {
    "conv_stride2_pad1": (
        "Conv",
        {"x": [1, 3, 9, 9], "w": [4, 3, 3, 3]},
        {"strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    "conv_asymmetric_pad_batch2": (
        "Conv",
        {"x": [2, 2, 6, 7], "w": [3, 2, 3, 2]},
        {"pads": [1, 0, 2, 1]},
    ),
    "conv_dilation2": (
        "Conv",
        {"x": [1, 2, 9, 9], "w": [3, 2, 3, 3]},
        {"dilations": [2, 2], "pads": [2, 2, 2, 2]},
    ),
    "conv_groups2": (
        "Conv",
        {"x": [1, 4, 6, 6], "w": [6, 2, 3, 3]},
        {"group": 2, "pads": [1, 1, 1, 1]},
    ),
    "conv_depthwise": (
        "Conv",
        {"x": [1, 5, 7, 7], "w": [5, 1, 3, 3]},
        {"group": 5, "strides": [2, 2], "pads": [1, 1, 1, 1]},
    ),
    "conv_1x1": ("Conv", {"x": [1, 6, 5, 5], "w": [4, 6, 1, 1]}, {}),
    "gemm_transA_transB": ("Gemm", {"a": [5, 3], "b": [4, 5]}, {"transA": 1, "transB": 1}),
    "gemm_transB": ("Gemm", {"a": [3, 5], "b": [4, 5]}, {"transB": 1}),
    "gemm_transA": ("Gemm", {"a": [5, 3], "b": [5, 4]}, {"transA": 1}),
    "matmul_2d": ("MatMul", {"a": [3, 5], "b": [5, 4]}, {}),
    "matmul_3d_by_2d": ("MatMul", {"a": [2, 3, 5], "b": [5, 4]}, {}),
    "matmul_3d_batched": ("MatMul", {"a": [2, 3, 5], "b": [2, 5, 4]}, {}),
    "matmul_4d_act_x_act": ("MatMul", {"q": [2, 3, 4, 5], "k": [2, 3, 5, 6]}, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_loopnest_computes_what_onnxruntime_computes(case: str) -> None:
    op, inputs, attrs = CASES[case]
    model = one_node_model(op, inputs, **attrs)
    network = lower_model(model)
    assert len(network.loopnests) == 1
    nest = network.loopnests[0]
    assert (nest.name, nest.onnx_node, nest.op) == (f"the_{op.lower()}", f"the_{op.lower()}", op)
    operand_names = [t.name for t in nest.operands]
    assert operand_names == list(inputs)  # first operand = input, second = weight; ONNX tensors
    assert [t.shape for t in nest.operands] == [tuple(s) for s in inputs.values()]

    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(s).astype(np.float32) for n, s in inputs.items()}
    expected = ort.InferenceSession(model.SerializeToString()).run(None, feeds)[0]
    got = evaluate(nest, {n: a.astype(np.float64) for n, a in feeds.items()})
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert nest.macs == int(np.prod(expected.shape)) * _reduction_size(op, inputs, attrs)


def _reduction_size(op: str, inputs: dict[str, list[int]], attrs: dict) -> int:
    shapes = list(inputs.values())
    if op == "Conv":
        return int(np.prod(shapes[1][1:]))
    if op == "Gemm":
        return shapes[0][0] if attrs.get("transA") else shapes[0][1]
    return shapes[0][-1]
