"""Lowering whole bundled models: counts, names, MACs, dims, the op graph, text round trip."""

from __future__ import annotations

import networkx as nx
import onnx
import pytest
from joule.frontend import load_onnx
from joule.ir import Network, parse_loopnests, print_loopnests
from joule.ir.builders import conv2d
from joule.lower import lower_model, lower_module
from joule.models import bundled_model
from onnx import TensorProto, helper


@pytest.fixture(scope="module")
def resnet18() -> Network:
    return lower_model("resnet18")


@pytest.fixture(scope="module")
def transformer() -> Network:
    return lower_model("transformer")


def test_resnet18_has_20_convs_1_gemm_and_1_81_gmacs(resnet18: Network) -> None:
    ops = [n.op for n in resnet18.loopnests]
    assert ops.count("Conv") == 20 and ops.count("Gemm") == 1 and len(ops) == 21
    assert resnet18.total_macs == 1_814_073_344


def test_resnet18_loopnests_are_named_after_onnx_nodes_in_execution_order(
    resnet18: Network,
) -> None:
    model = bundled_model("resnet18")
    mac_nodes = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    assert [n.name for n in resnet18.loopnests] == mac_nodes
    assert all(n.onnx_node == n.name for n in resnet18.loopnests)


def test_resnet18_stem_conv_matches_hand_written_conv(resnet18: Network) -> None:
    stem = resnet18.loopnest("/conv1/Conv")
    ref = conv2d(k=64, c=3, p=112, q=112, r=7, s=7, stride=2, pad=3)
    assert stem.dims == ref.dims and stem.reduction == ref.reduction
    assert [t.projection for t in stem.tensors] == [t.projection for t in ref.tensors]
    assert stem.tensor("input").name == "input" and stem.tensor("weight").name == "conv1.weight"
    assert stem.relax_op == "relax.nn.conv2d"
    assert dict(stem.attrs)["padding"] == "[[0, 0], [0, 0], [3, 3], [3, 3]]"


def test_gemm_transpose_is_folded_into_the_weight_and_still_listed(resnet18: Network) -> None:
    fc = resnet18.loopnest("/fc/Gemm")
    weight = fc.tensor("weight")
    assert weight.name == "fc.weight" and weight.shape == (1000, 512)
    assert [str(p) for p in weight.projection] == ["N", "K"]
    folded = [u for u in resnet18.unmapped_ops if u.folded]
    assert [(u.name, u.op, u.relax_op) for u in folded] == [
        ("/fc/Gemm:permute_dims", "Gemm", "relax.permute_dims")
    ]


def test_every_non_mac_node_is_one_unmapped_op(resnet18: Network) -> None:
    model = bundled_model("resnet18")
    others = [n.name for n in model.graph.node if n.op_type not in ("Conv", "Gemm")]
    names = {u.name for u in resnet18.unmapped_ops}
    assert set(others) <= names
    relu = next(u for u in resnet18.unmapped_ops if u.name == "/relu/Relu")
    assert (relu.op, relu.elements) == ("Relu", 64 * 112 * 112)


def test_graph_links_producers_to_consumers_by_tensor(resnet18: Network) -> None:
    g = resnet18.graph
    assert nx.is_directed_acyclic_graph(g)
    assert set(g.nodes) == {n.name for n in resnet18.loopnests} | {
        u.name for u in resnet18.unmapped_ops
    }
    assert g.edges["/conv1/Conv", "/bn1/BatchNormalization"]["tensor"] == "/conv1/Conv_output_0"
    assert g.nodes["/conv1/Conv"]["kind"] == "loopnest"
    # the residual Add of the first block reads the maxpool output through the skip path
    assert g.has_edge("/maxpool/MaxPool", "/layer1/layer1.0/Add")


def test_text_form_of_a_lowered_model_round_trips(resnet18: Network) -> None:
    text = print_loopnests(resnet18.loopnests)
    assert parse_loopnests(text) == resnet18.loopnests


def test_transformer_attention_matmuls_have_4d_batch_dims(transformer: Network) -> None:
    qk = transformer.loopnest("/attn/qk/MatMul")
    assert qk.dims == (("B0", 1), ("B1", 4), ("M", 128), ("N", 128), ("K", 64))
    assert qk.reduction == {"K"}
    assert [t.name for t in qk.operands] == [
        "/attn/q_heads/Transpose_output_0",
        "/attn/k_heads/Transpose_output_0",
    ]
    av = transformer.loopnest("/attn/av/MatMul")
    assert av.extents == {"B0": 1, "B1": 4, "M": 128, "N": 64, "K": 128}
    assert av.tensor("weight").name == "/attn/v_heads/Transpose_output_0"


def test_transformer_lists_projections_and_non_mac_ops(transformer: Network) -> None:
    names = [n.name for n in transformer.loopnests]
    for proj in ("q", "k", "v", "o"):
        assert f"/attn/{proj}_proj/MatMul" in names
    assert len(names) == 8
    proj = transformer.loopnest("/attn/q_proj/MatMul")
    assert proj.dims == (("B0", 1), ("M", 128), ("N", 256), ("K", 256))
    ops = {u.op for u in transformer.unmapped_ops}
    assert {"Softmax", "LayerNormalization", "Transpose", "Reshape", "Add", "Mul"} <= ops
    assert transformer.total_macs == 4 * 128 * 256 * 256 + 2 * 4 * 128 * 128 * 64 + 2 * (
        128 * 256 * 1024
    )


def _two_identical_convs() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y1"], name="first", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["y1"], ["r"], name="act"),
        helper.make_node("Conv", ["r", "w2"], ["y2"], name="second", pads=[1, 1, 1, 1]),
    ]
    shapes = {"x": [1, 4, 8, 8], "w1": [4, 4, 3, 3], "w2": [4, 4, 3, 3]}
    graph = helper.make_graph(
        nodes,
        "twins",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()],
        [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 4, 8, 8])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_shared_primfunc_gives_one_loopnest_per_call_site() -> None:
    mod, info = load_onnx(_two_identical_convs())
    conv_funcs = [gv.name_hint for gv in mod.functions if gv.name_hint.startswith("conv2d")]
    assert len(conv_funcs) == 1  # LegalizeOps deduplicated the two convs into one PrimFunc
    network = lower_module(mod, info)
    first, second = network.loopnests
    assert (first.name, second.name) == ("first", "second")
    assert first.signature() == second.signature()
    assert [t.name for t in first.tensors] == ["y1", "x", "w1"]
    assert [t.name for t in second.tensors] == ["y2", "r", "w2"]
    assert network.graph.has_edge("first", "act") and network.graph.has_edge("act", "second")
