"""ModuleDescription -> Network: loop nests for MAC sites, every other op listed, and the graph.

Nothing is dropped: an ONNX node without a MAC is one UnmappedOp; inside a
node with a MAC, every other computation (bias add, a transpose folded into
the weight's projection) is an UnmappedOp named ``<node>:<relax op>``.
"""

from __future__ import annotations

import math

import networkx as nx
from joule.errors import ModelError
from joule.frontend.records import Binding, ModuleDescription
from joule.ir.loopnest import LoopNest, UnmappedOp
from joule.ir.network import Network
from joule.lower.sites import build_loopnest


def build_network(desc: ModuleDescription, *, model: str | None = None) -> Network:
    """Lower a described module to Joule's IR, in execution order."""
    by_node: dict[str | None, list[Binding]] = {}
    for b in desc.bindings:
        by_node.setdefault(b.node, []).append(b)
    producers = {b.var: b for b in desc.bindings}
    _check_static(desc)

    folded: set[int] = set()
    op_of: dict[int, str] = {}  # binding var -> IR op name
    loopnests: list[LoopNest] = []
    pending: list[tuple[str, Binding | None, str, str]] = []  # (name, binding, op, relax_op)
    mac_vars: set[int] = set()

    def label(value: int) -> str:
        v = desc.values.get(value)
        if v is None:
            return "const"
        if v.tensor:
            return v.tensor
        b = producers.get(value)
        if b is not None and b.node:
            return f"{b.node}:{_short(b)}"
        return v.name

    for node in desc.nodes:
        own = by_node.get(node.name, [])
        sites = [b for b in own if b.kind == "call_tir" and desc.funcs[b.func or ""].macs]
        if not sites:
            last = next((b for b in reversed(own) if b.kind != "alias"), None)
            pending.append((node.name, None, node.op_type, last.relax_op if last else ""))
            for b in own:
                op_of[b.var] = node.name
            continue
        count = 0
        for b in sites:
            for block in desc.funcs[b.func or ""].macs:
                name = node.name if count == 0 else f"{node.name}#{count}"
                count += 1
                nest = build_loopnest(
                    desc, b, block, name, producers=producers, label=label, folded=folded
                )
                loopnests.append(nest)
                op_of[b.var] = op_of.get(b.var, name)
                mac_vars.add(b.var)
        shorts: dict[str, int] = {}
        for b in own:
            if b.var in mac_vars:
                continue
            if b.kind == "call_tir":
                short = _short(b)
                k = shorts.get(short, 0)
                shorts[short] = k + 1
                name = f"{node.name}:{short}" + (f"#{k}" if k else "")
                pending.append((name, b, node.op_type, b.relax_op))
                op_of[b.var] = name
            else:
                source = next((op_of[a] for a in b.args if a in op_of), None)
                if source is not None:
                    op_of[b.var] = source

    unmapped = []
    for name, b, op, relax_op in pending:
        if b is None:
            elements = _node_elements(desc, name, by_node.get(name, []))
        else:
            elements = _elements(desc, b.var)
        unmapped.append(
            UnmappedOp(name, op, elements, relax_op, folded=b is not None and b.var in folded)
        )
    graph = _graph(desc, loopnests, unmapped, op_of, label)
    return Network(model or desc.model, loopnests, unmapped, graph)


def _short(b: Binding) -> str:
    return (b.relax_op.rsplit(".", 1)[-1] if b.relax_op else "") or b.func or "op"


def _elements(desc: ModuleDescription, value: int) -> int:
    v = desc.values.get(value)
    return math.prod(v.shape) if v is not None and v.shape is not None else 0


def _node_elements(desc: ModuleDescription, node: str, own: list[Binding]) -> int:
    """Elements of the node's first output (0 when it is not a tensor of known shape)."""
    outputs = next((n.outputs for n in desc.nodes if n.name == node), ())
    for v in desc.values.values():
        if outputs and v.tensor == outputs[0]:
            return _elements(desc, v.id)
    return _elements(desc, own[-1].var) if own else 0


def _check_static(desc: ModuleDescription) -> None:
    for b in desc.bindings:
        if b.kind == "call_tir" and desc.funcs[b.func or ""].dynamic:
            raise ModelError(
                f"node {b.node!r} computes a product over loop extents that are not known "
                "numbers (a dynamic shape)",
                where=f"{desc.model}: node {b.node}",
                hint="bind the model's symbolic dimensions with --batch N / --dim NAME=VALUE, "
                "or export the model with static shapes",
            )


def _graph(desc, loopnests, unmapped, op_of, label) -> nx.DiGraph:
    graph = nx.DiGraph()
    for nest in loopnests:
        graph.add_node(nest.name, kind="loopnest", op=nest.op)
    for u in unmapped:
        graph.add_node(u.name, kind="unmapped", op=u.op, folded=u.folded)
    for b in desc.bindings:
        consumer = op_of.get(b.var)
        if consumer is None:
            continue
        for a in b.args:
            producer = op_of.get(a)
            if producer is not None and producer != consumer:
                graph.add_edge(producer, consumer, tensor=label(a))
    return graph
