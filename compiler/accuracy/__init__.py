"""Measured accuracy of a small CNN at 2-8 bits: the accuracy half of issue 17.

A CNN (two Conv, two Gemm) is trained here with PyTorch on scikit-learn's bundled
handwritten digits, written to ONNX with its real weights, quantised post-training
(symmetric, per tensor or per channel, weights and activations, uniform or bits per
layer) and evaluated by onnxruntime on a held-out split, over several seeds. See
docs/accuracy.md. The energy side calls::

    from joule import accuracy
    path = accuracy.float_model_path()          # ONNX for `joule compile` (batch 1)
    accuracy.layer_names()                      # ('conv1', 'conv2', 'fc1', 'fc2')
    rows = accuracy.study(["float", "w8a8", "w4a8", accuracy.QuantConfig.mixed({...})],
                          seeds=(0, 1, 2))      # accuracy_mean / accuracy_std per config
    accuracy.search(energy_of, max_drop=1.0)    # bits per layer, energy from a callback

PyTorch and scikit-learn come with the ``accuracy`` extra (``pip install -e '.[accuracy]'``);
they are imported on first use only.
"""

from joule.accuracy.measure import (
    accuracy,
    cache_dir,
    float_model,
    float_model_path,
    layer_names,
    layer_shapes,
    quantized_model,
    run,
    study,
    trained_weights,
)
from joule.accuracy.net import LAYER_NAMES, TrainSettings
from joule.accuracy.quantize import FLOAT, QuantConfig, parse
from joule.accuracy.search import SearchResult, search

__all__ = [
    "FLOAT",
    "LAYER_NAMES",
    "QuantConfig",
    "SearchResult",
    "TrainSettings",
    "accuracy",
    "cache_dir",
    "float_model",
    "float_model_path",
    "layer_names",
    "layer_shapes",
    "parse",
    "quantized_model",
    "run",
    "search",
    "study",
    "trained_weights",
]
