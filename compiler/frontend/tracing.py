"""An ONNX importer that keeps each ONNX node's name on the Relax value it produces.

The stock importer names values ``lv, lv1, ...`` and binds them lazily (a node's
result is often emitted only when its consumer is converted), so neither the
order nor the names follow the ONNX graph. ``TracingImporter`` binds every
node's result as soon as it is converted, under the node's name, and records
which Relax vars belong to which node. Bindings a converter emits on the way
(e.g. the conv2d under a Conv's bias add) precede the node's own binding, so
"everything since the previous node" is the node's.

Pinned to TVM 0.27's private ``ONNXGraphImporter`` (see pyproject).
"""

from __future__ import annotations

from typing import Any

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend


class TracingImporter(onnx_frontend.ONNXGraphImporter):
    """``ONNXGraphImporter`` that binds each node's result under the ONNX node name."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.node_vars: dict[str, list[relax.Var]] = {}
        self.converting: tuple[str, str] | None = None  # (node, op) while its converter runs
        self._subgraph_depth = 0

    def _convert_operator(
        self, op_name: str, inputs: list[Any], attrs: dict[str, Any], opset: int
    ) -> Any:
        name = attrs["tvm_custom"]["name"]
        self.converting = (name, op_name)  # left set when the converter fails: names the node
        result = super()._convert_operator(op_name, inputs, attrs, opset)
        if self._subgraph_depth:
            return result  # inside an If branch: binding here would hoist the branch
        result = self._bind(result, name, self.node_vars.setdefault(name, []))
        self.converting = None
        return result

    def _convert_subgraph(self, bb: relax.BlockBuilder, graph: Any) -> Any:
        self._subgraph_depth += 1
        try:
            return super()._convert_subgraph(bb, graph)
        finally:
            self._subgraph_depth -= 1

    def _bind(self, expr: Any, name: str, owned: list[relax.Var]) -> Any:
        """Emit tensor-valued calls under ``name``; record vars the converter bound itself."""
        if isinstance(expr, relax.Tuple):
            fields = [self._bind(f, name, owned) for f in expr.fields]
            return relax.Tuple(fields) if fields else expr
        if isinstance(expr, relax.Call) and isinstance(expr.ty, relax.TensorType | relax.TupleType):
            var = self.bb.emit(expr, name_hint=name)
            owned.append(var)
            return var
        if isinstance(expr, relax.Var):
            owned.append(expr)
        return expr
