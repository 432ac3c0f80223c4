"""The frontend's contract: bad models are ModelErrors that say what and what to do."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import onnx
import pytest
from joule.errors import ModelError
from joule.frontend import load_onnx
from joule.lower import lower_model
from onnx import TensorProto, helper, numpy_helper


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


def conv_model(x_shape: list, w_shape: list, **attrs: object) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c1", **attrs)],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, w_shape),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def test_the_tvm_error_classes_joule_catches_exist_in_tvm() -> None:
    # The importer once caught tvm.error.TVMError, a name TVM 0.27 lacks: every
    # failure then crashed inside the except clause. Import what is relied on.
    from joule.frontend.importer import TVM_FAILURES
    from tvm import relax
    from tvm.error import DiagnosticError, InternalError, OpError, OpNotImplemented
    from tvm.s_tir import ScheduleError

    for cls in (DiagnosticError, InternalError, OpError, OpNotImplemented, ScheduleError):
        assert issubclass(cls, TVM_FAILURES)
    # A C++ check failure crosses the FFI as InternalError (what _discard_blocks stops on).
    with pytest.raises(InternalError, match="no block is being built"):
        relax.BlockBuilder()._end_block()


@pytest.mark.parametrize(
    ("model", "stage"),
    [
        (conv_model([1, 6, 8, 8], [4, 3, 3, 3], group=4), "import"),  # relax.nn.conv2d refuses
        (conv_model([1, 3, 2, 2], [4, 3, 3, 3]), "legalize"),  # TOPI: negative output shape
    ],
    ids=["importer", "legalize_ops"],
)
def test_a_failure_inside_tvm_names_the_node_and_leaves_no_noise(
    model: onnx.ModelProto,
    stage: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Joule's own checks catch these first; without them, TVM's failure must still be
    # a ModelError naming the node, with nothing printed by TVM (stdout or C++ stderr).
    monkeypatch.setattr("joule.frontend.importer.validate_model", lambda *args: None)
    with pytest.raises(ModelError) as err:
        load_onnx(model)
    assert f"TVM could not {stage} node c1 (Conv)" in err.value.message()
    assert err.value.where.endswith("node c1 (Conv)")
    del err  # its traceback holds TVM's builder: TVM warns (or not) when that goes
    gc.collect()
    out, stderr = capfd.readouterr()
    assert out == "" and "BlockBuilder" not in stderr, (out, stderr)


def test_shape_checks_see_the_shapes_of_large_weights() -> None:
    # Weights over 1024 elements reach shape inference as shape-only inputs (for speed):
    # a wrong weight must still be caught, by its declared dims.
    model = matmul_model([4, 64], [32, 8])
    model.graph.input.pop()
    model.graph.initializer.append(
        numpy_helper.from_array(np.zeros((65, 32), np.float32), "b")  # 2080 elements
    )
    with pytest.raises(ModelError, match=r"'a' \[4, 64\] has 64 columns, 'b' \[65, 32\] has 65"):
        load_onnx(model)
