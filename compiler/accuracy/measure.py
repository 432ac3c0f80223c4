"""Measured accuracy of the digits CNN, float and quantised, over seeds.

Everything runs for real: the network is trained with PyTorch (cached on disk per seed
and training settings, so a second call only reads a file), written to ONNX, quantised
(:mod:`joule.accuracy.quantize`) and evaluated by onnxruntime on the held-out split.

Cache location: ``$JOULE_CACHE_DIR/accuracy``, else ``$XDG_CACHE_HOME/joule/accuracy``,
else ``~/.cache/joule/accuracy`` (the same root as Joule's result cache). A cache key
covers the seed, the training settings, the versions of torch, scikit-learn and numpy,
and the source of the data and network modules, so a changed recipe never serves old
weights.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import statistics
import tempfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from joule.accuracy import data, net
from joule.accuracy.net import DEFAULT_TRAINING, LAYER_NAMES, LAYERS, TrainSettings
from joule.accuracy.quantize import FLOAT, QuantConfig, build_model, parse, resolve

CALIBRATION_SIZE = 256
DEFAULT_SEEDS = (0, 1, 2, 3, 4)
_RESOLVED: dict[tuple, dict] = {}  # (seed, settings, calibration size) -> resolve() memo


def cache_dir() -> Path:
    root = os.environ.get("JOULE_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "joule"
    path = base / "accuracy"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _key(seed: int, settings: TrainSettings) -> str:
    import sklearn
    import torch

    here = Path(__file__).parent
    source = b"".join((here / f).read_bytes() for f in ("data.py", "net.py"))
    text = json.dumps(
        {
            "seed": seed,
            "settings": settings.__dict__,
            "torch": torch.__version__,
            "sklearn": sklearn.__version__,
            "numpy": np.__version__,
            "source": hashlib.sha256(source).hexdigest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_atomic(path: Path, payload: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(payload)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@lru_cache(maxsize=32)
def trained_weights(seed: int = 0, settings: TrainSettings = DEFAULT_TRAINING) -> dict:
    """The float weights trained on ``seed``'s training split (from the cache if there)."""
    path = cache_dir() / f"weights-{seed}-{_key(seed, settings)}.npz"
    if path.exists():
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    split = data.split(seed)
    weights = net.train(split.x_train, split.y_train, seed, settings)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    _write_atomic(path, buffer.getvalue())
    return weights


def float_model(
    seed: int = 0, settings: TrainSettings = DEFAULT_TRAINING, batch: int | str = "N"
) -> onnx.ModelProto:
    """The trained float network as ONNX (real weights; batch symbolic ``N`` by default)."""
    return build_model(trained_weights(seed, settings), batch=batch)


def float_model_path(
    seed: int = 0, settings: TrainSettings = DEFAULT_TRAINING, batch: int = 1
) -> Path:
    """Path of the trained float ONNX model (written once under :func:`cache_dir`).

    ``batch=1`` (default) fixes every shape, so ``joule compile PATH --target eyeriss``
    needs no ``--batch``. The same seed and settings give the same file, byte for byte.
    """
    path = cache_dir() / f"digits_cnn-seed{seed}-b{batch}-{_key(seed, settings)}.onnx"
    if not path.exists():
        _write_atomic(path, float_model(seed, settings, batch).SerializeToString())
    return path


def layer_names() -> tuple[str, ...]:
    """The Conv/Gemm node names, in order: the layer names Joule's schedule reports."""
    return LAYER_NAMES


def layer_shapes() -> dict[str, dict[str, int]]:
    """Per layer (batch 1): MACs, weight count and input/output element counts."""
    out = {}
    for layer, kind, cin, cout in LAYERS:
        if kind == "Conv":
            pixels = 64  # 8x8, 'same' padding
            weights = cout * cin * 9
            out[layer] = {
                "macs": weights * pixels,
                "weights": weights,
                "inputs": cin * pixels,
                "outputs": cout * pixels,
            }
        else:
            out[layer] = {"macs": cin * cout, "weights": cin * cout, "inputs": cin, "outputs": cout}
    return out


# -- evaluation ---------------------------------------------------------------------------


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The model's logits for images ``x`` (N, 1, 8, 8), computed by onnxruntime."""
    return _session(model).run([model.graph.output[0].name], {"image": x})[0]


def accuracy_of(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float((run(model, x).argmax(axis=1) == y).mean() * 100.0)


@lru_cache(maxsize=32)
def calibration_activations(
    seed: int, settings: TrainSettings = DEFAULT_TRAINING, size: int = CALIBRATION_SIZE
) -> dict[str, np.ndarray]:
    """The float tensor each layer reads, on ``size`` training images (onnxruntime)."""
    model = build_model(trained_weights(seed, settings), extra_outputs=True)
    names = [f"{layer}.in" for layer in LAYER_NAMES]
    values = _session(model).run(names, {"image": data.calibration_set(seed, size)})
    return dict(zip(LAYER_NAMES, values, strict=True))


def quantized_model(
    config: QuantConfig | str,
    seed: int = 0,
    settings: TrainSettings = DEFAULT_TRAINING,
    *,
    calibration_size: int = CALIBRATION_SIZE,
    native_int4: bool = False,
    batch: int | str = "N",
) -> onnx.ModelProto:
    """The ONNX model for ``config`` (QDQ nodes), calibrated on ``seed``'s training images."""
    config = parse(config) if isinstance(config, str) else config
    weights = trained_weights(seed, settings)
    activations = calibration_activations(seed, settings, calibration_size)
    memo = _RESOLVED.setdefault((seed, settings, calibration_size), {})
    quant = resolve(weights, activations, config, memo)
    return build_model(weights, quant, batch=batch, native_int4=native_int4)


def accuracy(
    config: QuantConfig | str,
    seed: int = 0,
    settings: TrainSettings = DEFAULT_TRAINING,
    *,
    part: str = "test",
    calibration_size: int = CALIBRATION_SIZE,
) -> float:
    """Measured top-1 accuracy (percent) of ``config`` on ``seed``'s ``part`` split."""
    model = quantized_model(config, seed, settings, calibration_size=calibration_size)
    x, y = data.split(seed).part(part)
    return accuracy_of(model, x, y)


def _summary(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def study(
    configs: Iterable[QuantConfig | str],
    seeds: Sequence[int] = DEFAULT_SEEDS,
    settings: TrainSettings = DEFAULT_TRAINING,
    *,
    part: str = "test",
    calibration_size: int = CALIBRATION_SIZE,
) -> list[dict[str, Any]]:
    """Accuracy of each configuration, measured on every seed, with mean and spread.

    Each seed has its own split, trained network and calibration images, so the spread
    covers all three. Returns one dict per configuration::

        {"config": "w4a8-channel", "granularity": "channel", "calibration": "mse",
         "bits": {"conv1": {"weights": 4, "activations": 8}, ...},   # None = float
         "accuracy_mean": 97.9, "accuracy_std": 0.6,                  # percent, sample std
         "accuracies": [..one per seed..], "seeds": [..],
         "float_accuracy_mean": 98.1, "drop_mean": 0.2}               # drop vs float, points
    """
    seeds = list(seeds)
    floats = [accuracy(FLOAT, s, settings, part=part) for s in seeds]
    float_mean, _ = _summary(floats)
    rows = []
    for config in configs:
        config = parse(config) if isinstance(config, str) else config
        values = [
            accuracy(config, s, settings, part=part, calibration_size=calibration_size)
            for s in seeds
        ]
        mean, std = _summary(values)
        rows.append(
            {
                "config": config.name,
                "granularity": config.granularity,
                "calibration": config.calibration,
                "bits": {
                    k: {"weights": w, "activations": a}
                    for k, (w, a) in config.bits_per_layer().items()
                },
                "accuracy_mean": mean,
                "accuracy_std": std,
                "accuracies": values,
                "seeds": seeds,
                "float_accuracy_mean": float_mean,
                "drop_mean": float_mean - mean,
            }
        )
    return rows
