"""A small ONNX graph builder: the bundled models are written with it, not downloaded.

Weights are declared either as graph inputs (shape-only: the file stays tiny and
still carries every shape a mapper needs) or as random initializers (for
numeric checks against onnxruntime). Small integer constants such as Reshape
shapes are always initializers, as in exported models.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9  # onnxruntime 1.32 refuses the newer default of onnx 1.23


class GraphBuilder:
    """Appends ONNX nodes one call at a time; each call returns its output's name."""

    def __init__(self, name: str, *, random_weights: bool = False, seed: int = 0) -> None:
        self.name = name
        self.random_weights = random_weights
        self._rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.initializers: list[onnx.TensorProto] = []

    # -- tensors ---------------------------------------------------------------
    def input(self, name: str, shape: Sequence[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def output(self, name: str) -> None:
        """Mark ``name`` as a graph output; its shape is inferred in :meth:`model`."""
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))

    def weight(self, name: str, shape: Sequence[int], *, init: str = "normal") -> str:
        """A learned tensor: a graph input (shape-only) or a random initializer."""
        if not self.random_weights:
            return self.input(name, shape)
        if init == "ones":
            value = 1.0 + 0.1 * self._rng.standard_normal(shape)
        elif init == "positive":
            value = 0.5 + self._rng.random(shape)
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else int(shape[0])
            value = self._rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def constant(self, name: str, value: Sequence[int] | np.ndarray) -> str:
        array = np.asarray(value)
        if array.dtype.kind in "iu":
            array = array.astype(np.int64)
        else:
            array = array.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    # -- nodes -----------------------------------------------------------------
    def node(self, op: str, inputs: Sequence[str], name: str, **attrs: object) -> str:
        """One node with one output, named ``<name>_output_0`` like the torch exporter."""
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=name, **attrs))
        return out

    def conv(
        self,
        x: str,
        prefix: str,
        node: str,
        *,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        pad: int = 0,
        dilation: int = 1,
        group: int = 1,
        bias: bool = False,
    ) -> str:
        w = self.weight(f"{prefix}.weight", [cout, cin // group, kernel, kernel])
        ins = [x, w]
        if bias:
            ins.append(self.weight(f"{prefix}.bias", [cout]))
        return self.node(
            "Conv",
            ins,
            node,
            kernel_shape=[kernel, kernel],
            strides=[stride, stride],
            pads=[pad] * 4,
            dilations=[dilation, dilation],
            group=group,
        )

    def batchnorm(self, x: str, prefix: str, node: str, channels: int) -> str:
        scale = self.weight(f"{prefix}.weight", [channels], init="ones")
        bias = self.weight(f"{prefix}.bias", [channels])
        mean = self.weight(f"{prefix}.running_mean", [channels])
        var = self.weight(f"{prefix}.running_var", [channels], init="positive")
        return self.node("BatchNormalization", [x, scale, bias, mean, var], node, epsilon=1e-5)

    def gemm(self, x: str, prefix: str, node: str, *, fin: int, fout: int) -> str:
        w = self.weight(f"{prefix}.weight", [fout, fin])
        b = self.weight(f"{prefix}.bias", [fout])
        return self.node("Gemm", [x, w, b], node, transB=1)

    def linear(self, x: str, prefix: str, node: str, *, fin: int, fout: int) -> str:
        """MatMul by a [fin, fout] weight, then the bias Add (two nodes, as exporters emit)."""
        w = self.weight(f"{prefix}.weight", [fin, fout])
        b = self.weight(f"{prefix}.bias", [fout])
        y = self.node("MatMul", [x, w], f"{node}/MatMul")
        return self.node("Add", [y, b], f"{node}/Add")

    # -- model -----------------------------------------------------------------
    def model(self) -> onnx.ModelProto:
        graph = helper.make_graph(
            self.nodes, self.name, self.inputs, self.outputs, initializer=self.initializers
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="joule"
        )
        model.ir_version = IR_VERSION
        # Shapes of every value (outputs included) so the model passes a full check.
        return onnx.shape_inference.infer_shapes(model, strict_mode=True)
