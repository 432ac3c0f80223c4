"""The frontend's contract: bad models are ModelErrors that say what and what to do."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from joule.errors import ModelError
from joule.frontend import load_onnx
from joule.lower import lower_model
from onnx import TensorProto, helper


def matmul_model(a_shape: list, b_shape: list, op: str = "MatMul") -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["a", "b"], ["y"], name="mm")],
        "g",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, b_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_onnx(tmp_path / "absent.onnx")


def test_non_onnx_bytes_are_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a protobuf\n")
    with pytest.raises(ModelError, match="ONNX") as err:
        load_onnx(path)
    assert err.value.hint


def test_unsupported_ops_are_listed_with_their_nodes() -> None:
    graph = helper.make_graph(
        [
            helper.make_node("Celu", ["x"], ["y"], name="odd_activation"),
            helper.make_node("LpNormalization", ["y"], ["z"], name="odd_norm"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    with pytest.raises(ModelError) as err:
        load_onnx(model)
    text = err.value.message()
    assert "Celu" in text and "LpNormalization" in text
    assert "odd_activation" in text and "odd_norm" in text


def test_unbound_symbolic_dim_names_input_dim_and_flags() -> None:
    with pytest.raises(ModelError) as err:
        load_onnx(matmul_model(["seq", 8], [8, 4]))
    text = err.value.message()
    assert "'a'" in text and "'seq'" in text and "--dim seq=VALUE" in text and "--batch" in text


def test_batch_binds_symbolic_first_dim_and_dim_binds_by_name() -> None:
    model = matmul_model(["N", "seq", 8], [8, 4])
    net = lower_model(model, batch=3, dims={"seq": 5})
    assert net.loopnests[0].extents == {"B0": 3, "M": 5, "N": 4, "K": 8}


def test_unknown_dim_name_is_reported_with_the_known_ones() -> None:
    with pytest.raises(ModelError, match="seq"):
        load_onnx(matmul_model(["seq", 8], [8, 4]), dims={"sequence": 4})


def test_checker_failure_names_the_node() -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="bad_relu", slope=0.1)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ModelError) as err:
        load_onnx(model)
    assert "node bad_relu (Relu)" in err.value.message()


def test_unknown_bundled_name_lists_the_bundled_models() -> None:
    with pytest.raises(ModelError, match="resnet18"):
        lower_model("resnet19")


def test_unnamed_nodes_get_unique_names() -> None:
    model = matmul_model([2, 8], [8, 4])
    model.graph.node[0].name = ""
    net = lower_model(model)
    assert net.loopnests[0].name == "MatMul_0"
