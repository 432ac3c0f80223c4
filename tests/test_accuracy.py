"""joule.accuracy: the digits CNN trained here, exported to ONNX, quantised and measured.

Everything is real: PyTorch trains (about 2 s a seed, cached per test session under
JOULE_CACHE_DIR), onnxruntime runs the float and the QDQ models. The thresholds are the
issue's (float >= 95 %, 8-bit within 1 point of float) plus checks that fail if the
quantisation stopped doing anything (2 bits must hurt; per channel must help at low bits).
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from joule import accuracy as A  # noqa: E402
from joule.accuracy import data, net, quantize  # noqa: E402
from joule.accuracy.measure import calibration_activations, run  # noqa: E402
from joule.accuracy.search import toy_energy  # noqa: E402

SEEDS = (0, 1, 2)


def _init(model: onnx.ModelProto, name: str) -> np.ndarray:
    (tensor,) = [t for t in model.graph.initializer if t.name == name]
    return onnx.numpy_helper.to_array(tensor)


def test_split_is_fixed_by_seed_stratified_and_complete() -> None:
    a, b, c = data.split(0), data.split(0), data.split(1)
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.y_test, c.y_test)
    sizes = [len(a.part(p)[1]) for p in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[2] == 450
    assert set(np.unique(a.y_test)) == set(range(10))
    cal = data.calibration_set(0, 64)
    assert cal.shape == (64, 1, 8, 8) and np.array_equal(cal, data.calibration_set(0, 64))


def test_training_is_deterministic_per_seed() -> None:
    s = data.split(0)
    quick = net.TrainSettings(epochs=2)
    one = net.train(s.x_train, s.y_train, 0, quick)
    two = net.train(s.x_train, s.y_train, 0, quick)
    other = net.train(s.x_train, s.y_train, 1, quick)
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert not np.array_equal(one["conv1.weight"], other["conv1.weight"])


@pytest.mark.parametrize("seed", SEEDS)
def test_float_model_reaches_95_percent_and_onnx_equals_torch(seed: int) -> None:
    split = data.split(seed)
    weights = A.trained_weights(seed)
    model = A.float_model(seed)
    ours = run(model, split.x_test)
    theirs = net.torch_logits(weights, split.x_test)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    assert np.array_equal(ours.argmax(1), theirs.argmax(1))
    assert A.accuracy("float", seed) >= 95.0


def test_float_model_file_is_deterministic_and_names_the_layers() -> None:
    path = A.float_model_path(0)
    assert path.read_bytes() == A.float_model(0, batch=1).SerializeToString()
    model = onnx.load(path)
    onnx.checker.check_model(model)
    layers = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
    assert tuple(n.name for n in layers) == A.layer_names() == ("conv1", "conv2", "fc1", "fc2")
    assert [n.op_type for n in layers] == ["Conv", "Conv", "Gemm", "Gemm"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [1, 1, 8, 8]
    # real weights, not placeholders
    np.testing.assert_array_equal(_init(model, "fc2.weight"), A.trained_weights(0)["fc2.weight"])


def _mean(config: str, seeds=SEEDS) -> float:
    return float(np.mean([A.accuracy(config, s) for s in seeds]))


@pytest.mark.parametrize("granularity", ["tensor", "channel"])
def test_8_bit_is_within_one_point_of_float(granularity: str) -> None:
    assert _mean(f"w8a8-{granularity}") >= _mean("float") - 1.0


def test_2_bit_really_differs_from_float() -> None:
    x = data.split(0).x_test
    float_logits = run(A.float_model(0), x)
    q_logits = run(A.quantized_model("w2a2-channel", 0), x)
    assert np.abs(q_logits - float_logits).max() > 0.5
    assert _mean("w2a2-channel-max") < _mean("float") - 5.0
    assert _mean("w2a2-channel") < _mean("float") - 2.0


def test_per_channel_beats_per_tensor_at_low_bits_on_average() -> None:
    low = ("w2a8", "w3a8", "w2a2", "w3a3")
    tensor = np.mean([_mean(f"{c}-tensor-max") for c in low])
    channel = np.mean([_mean(f"{c}-channel-max") for c in low])
    assert channel >= tensor + 2.0


@pytest.mark.parametrize("bits", range(2, 9))
def test_the_graph_holds_b_bit_integers(bits: int) -> None:
    model = A.quantized_model(f"w{bits}a{bits}-tensor", 0)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") == 4
    assert ops.count("Clip") == (4 if bits < 8 else 0)
    qmax = 2 ** (bits - 1) - 1
    for layer in A.layer_names():
        q = _init(model, f"{layer}.weight_q")
        assert q.dtype == np.int8 and q.min() >= -qmax and q.max() <= qmax
        assert len(np.unique(q)) <= 2 * qmax + 1
        assert len(np.unique(q)) >= min(2 * qmax + 1, 3)  # the range is used, not collapsed
        b = _init(model, f"{layer}.bias_q")
        assert b.dtype == np.int32 and np.abs(b.astype(np.int64)).max() < 2**31 - 1
        if bits < 8:
            assert _init(model, f"{layer}.in_lo") == 0
            assert _init(model, f"{layer}.in_hi") == 2**bits - 1


def test_native_int4_gives_the_same_logits_as_int8_with_clip() -> None:
    x = data.split(0).x_test
    for config in ("w4a4-channel", "w4a4-tensor-max"):
        clipped = A.quantized_model(config, 0)
        native = A.quantized_model(config, 0, native_int4=True)
        types = {t.data_type for t in native.graph.initializer}
        assert onnx.TensorProto.INT4 in types and onnx.TensorProto.UINT4 in types
        assert "Clip" not in [n.op_type for n in native.graph.node]
        np.testing.assert_array_equal(run(native, x), run(clipped, x))


def _reference_logits(config: str, seed: int, x: np.ndarray) -> np.ndarray:
    """The quantised network recomputed independently with torch.nn.functional."""
    import torch
    import torch.nn.functional as F

    quant = quantize.resolve(
        A.trained_weights(seed),
        calibration_activations(seed),
        quantize.parse(config),
    )
    w = A.trained_weights(seed)

    def fake(t: torch.Tensor, lq: quantize.LayerQuant) -> torch.Tensor:
        s = float(lq.act_scale)
        return torch.clamp(torch.round(t / s), lq.act_lo, lq.act_hi) * s

    def params(layer: str) -> tuple[torch.Tensor, torch.Tensor]:
        lq = quant[layer]
        shape = (-1,) + (1,) * (lq.weight_int.ndim - 1)
        scale = np.asarray(lq.weight_scale, np.float32)
        weight = lq.weight_int.astype(np.float32) * (scale.reshape(shape) if scale.ndim else scale)
        bias_scale = np.broadcast_to(scale * lq.act_scale, w[f"{layer}.bias"].shape)
        bias = np.round(w[f"{layer}.bias"] / bias_scale) * bias_scale
        return torch.from_numpy(weight), torch.from_numpy(bias.astype(np.float32))

    t = torch.from_numpy(x)
    t = F.relu(F.conv2d(fake(t, quant["conv1"]), *params("conv1"), padding=1))
    t = F.max_pool2d(F.relu(F.conv2d(fake(t, quant["conv2"]), *params("conv2"), padding=1)), 2)
    t = F.relu(F.linear(fake(t.flatten(1), quant["fc1"]), *params("fc1")))
    return F.linear(fake(t, quant["fc2"]), *params("fc2")).numpy()


@pytest.mark.parametrize("config", ["w8a8-channel", "w3a5-tensor", "w2a2-channel-max"])
def test_onnxruntime_runs_exactly_the_quantised_arithmetic(config: str) -> None:
    x = data.split(1).x_test
    ours = run(A.quantized_model(config, 1), x)
    np.testing.assert_allclose(ours, _reference_logits(config, 1, x), rtol=1e-4, atol=1e-4)


def test_mixed_bits_per_layer() -> None:
    bits = {"conv1": (8, 8), "conv2": (2, 4), "fc1": (4, None), "fc2": (None, None)}
    config = A.QuantConfig.mixed(bits)
    assert config.bits_per_layer() == bits
    model = A.quantized_model(config, 0)
    names = {n.name for n in model.graph.node}
    assert {"conv1/a_q", "conv2/a_q", "conv1/w_dq", "conv2/w_dq", "fc1/w_dq"} <= names
    assert not {"fc1/a_q", "fc2/a_q", "fc2/w_dq"} & names
    assert _init(model, "fc2.weight").dtype == np.float32
    assert 90.0 <= A.accuracy(config, 0) <= 100.0


def test_parse_and_validation() -> None:
    assert A.parse("w4a8").bits_per_layer()["fc1"] == (4, 8)
    assert A.parse("W4A8-tensor-max").granularity == "tensor"
    assert A.parse("wfa6").bits_per_layer()["conv1"] == (None, 6)
    assert A.parse("float").bits_per_layer()["conv2"] == (None, None)
    for bad in ("w1a8", "w9a8", "w4a8-rows", "eight"):
        with pytest.raises(ValueError):
            A.parse(bad)
    with pytest.raises(ValueError):
        A.QuantConfig.mixed({"conv9": (4, 4)})


def test_study_reports_mean_and_spread_per_config() -> None:
    rows = A.study(["w8a8", "w4a4-tensor"], seeds=(0, 1))
    assert [r["config"] for r in rows] == ["w8a8-channel", "w4a4-tensor"]
    for r in rows:
        assert len(r["accuracies"]) == 2 and r["seeds"] == [0, 1]
        assert r["accuracy_mean"] == pytest.approx(np.mean(r["accuracies"]))
        assert r["accuracy_std"] == pytest.approx(np.std(r["accuracies"], ddof=1))
        assert set(r["bits"]) == set(A.layer_names())
    assert rows[1]["bits"]["conv2"] == {"weights": 4, "activations": 4}
    assert rows[0]["accuracies"][0] == A.accuracy("w8a8", 0)


def test_mixed_precision_search_with_an_energy_callback() -> None:
    seen = []

    def energy_of(bits):
        seen.append(dict(bits))
        return toy_energy(bits)

    result = A.search(energy_of, max_drop=1.0, seeds=(0, 1), widths=(8, 4, 2))
    assert all(set(b) == set(A.layer_names()) for b in seen)
    assert result.energy < result.baseline_energy and result.energy_ratio > 1.5
    assert result.energy == toy_energy(result.bits)
    # the constraint holds when the accuracy is measured again, independently
    val = np.mean([A.accuracy(result.config, s, part="val") for s in (0, 1)])
    base = np.mean([A.accuracy("w8a8", s, part="val") for s in (0, 1)])
    assert val == pytest.approx(result.val_accuracy) and val >= base - 1.0
    assert result.baseline_val_accuracy == pytest.approx(base)
    energies = [s["energy"] for s in result.steps]
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == len(energies)
    assert result.test["seeds"] == [0, 1] and result.baseline_test["config"].startswith("mixed:")


def test_search_with_no_budget_keeps_the_baseline() -> None:
    result = A.search(toy_energy, max_drop=-100.0, seeds=(0,), widths=(8, 4))
    assert result.bits == {k: (8, 8) for k in A.layer_names()} and result.steps == []
    assert result.energy_ratio == 1.0


@pytest.mark.slow
def test_joule_compiles_the_trained_model_and_reports_its_layers(tmp_path) -> None:
    import json
    import subprocess
    import sys

    path = A.float_model_path(0)
    subprocess.run(
        [sys.executable, "-m", "joule", "compile", str(path), "--target", "eyeriss",
         "--out", str(tmp_path)],
        check=True, capture_output=True,
    )  # fmt: skip
    schedule = json.loads((tmp_path / "schedule.json").read_text())
    layers = {layer["onnx_node"]: layer["macs"] for layer in schedule["layers"]}
    assert layers == {k: v["macs"] for k, v in A.layer_shapes().items()}
