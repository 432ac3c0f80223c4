"""The extra bundled networks: torchvision MAC counts, layer counts, names, and that they run."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from joule.lower import lower_model
from joule.models import BUNDLED_MODELS, bundled_model
from joule.models.bert import bert_layer
from joule.models.mobilenet import mobilenet_v2


@pytest.mark.parametrize(
    ("name", "macs", "convs", "matmuls"),
    [
        ("alexnet", 714_188_480, 5, 3),
        ("vgg16", 15_470_264_320, 13, 3),
        ("mobilenet_v2", 300_774_272, 52, 1),
        ("bert_layer", 931_135_488, 0, 8),
    ],
)
def test_extra_model_macs_match_torchvision_and_bert_base(
    name: str, macs: int, convs: int, matmuls: int
) -> None:
    network = lower_model(name)
    ops = [n.op for n in network.loopnests]
    assert network.total_macs == macs
    assert ops.count("Conv") == convs
    assert len(ops) - convs == matmuls


def test_extra_models_are_registered_as_bundled() -> None:
    assert {"alexnet", "vgg16", "mobilenet_v2", "bert_layer"} <= set(BUNDLED_MODELS)


def test_mobilenet_v2_depthwise_convs_are_grouped_and_named_like_torchvision() -> None:
    network = lower_model("mobilenet_v2")
    dw = network.loopnest(
        "/features/features.2/features.2.conv/features.2.conv.1/features.2.conv.1.0/Conv"
    )
    assert dw.extents["G"] == 96 and dw.extents["C"] == 1 and dw.extents["K"] == 1
    assert sum(1 for n in network.loopnests if "G" in n.extents) == 17


def test_vgg16_and_alexnet_weights_carry_torchvision_state_dict_names() -> None:
    vgg = bundled_model("vgg16")
    names = {i.name for i in vgg.graph.input}
    assert {"features.0.weight", "features.28.weight", "classifier.6.weight"} <= names
    alex = bundled_model("alexnet")
    assert "classifier.1.weight" in {i.name for i in alex.graph.input}


@pytest.mark.parametrize(
    "model",
    [
        mobilenet_v2(random_weights=True, image=32),
        bert_layer(random_weights=True, seq=8, hidden=32, heads=4, ffn=64),
    ],
    ids=["mobilenet_v2", "bert_layer"],
)
def test_extra_models_pass_the_checker_and_run_in_onnxruntime(model: onnx.ModelProto) -> None:
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {}
    for value in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in value.shape]
        feed[value.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    (out,) = session.run(None, feed)
    assert np.isfinite(out).all()
