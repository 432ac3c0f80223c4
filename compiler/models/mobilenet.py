"""MobileNetV2 (width 1.0) with torchvision's topology, names and shapes (3x224x224).

52 Conv (17 of them depthwise) + 1 Gemm, 300,774,272 MACs. Names follow
torchvision (``features.2.conv.1.0`` is block 2's depthwise conv) and the torch
ONNX exporter; ReLU6 is exported as Clip(0, 6). BatchNormalization stays a
separate node, as in the ResNets.
"""

from __future__ import annotations

import onnx
from joule.models.graph import GraphBuilder

# torchvision's inverted_residual_setting: expansion t, channels c, repeats n, stride s.
_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
_LAST = 1280


def _relu6(g: GraphBuilder, x: str, node: str) -> str:
    lo = g.constant(f"{node}/min", 0.0)
    hi = g.constant(f"{node}/max", 6.0)
    return g.node("Clip", [x, lo, hi], node)


def _scope(name: str) -> str:
    """The exporter's scope of a module: ``features.1.conv`` -> ``/features/features.1/...``."""
    parts = name.split(".")
    return "/" + "/".join(".".join(parts[: i + 1]) for i in range(len(parts)))


def _block(g: GraphBuilder, x: str, index: int, cin: int, cout: int, t: int, stride: int) -> str:
    """One InvertedResidual: 1x1 expand (t > 1), 3x3 depthwise, 1x1 linear projection."""
    name = f"features.{index}.conv"
    hidden = cin * t
    y, k = x, 0
    if t != 1:
        y = _cbr(g, y, f"{name}.{k}", cin=cin, cout=hidden, kernel=1)
        k += 1
    y = _cbr(g, y, f"{name}.{k}", cin=hidden, cout=hidden, kernel=3, stride=stride, groups=hidden)
    k += 1
    scope = _scope(name)
    y = g.conv(y, f"{name}.{k}", f"{scope}/{name}.{k}/Conv", cin=hidden, cout=cout, kernel=1)
    y = g.batchnorm(y, f"{name}.{k + 1}", f"{scope}/{name}.{k + 1}/BatchNormalization", cout)
    if stride == 1 and cin == cout:
        y = g.node("Add", [x, y], f"{_scope(f'features.{index}')}/Add")
    return y


def _cbr(
    g: GraphBuilder,
    x: str,
    name: str,
    *,
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    groups: int = 1,
) -> str:
    """torchvision's Conv2dNormActivation: ``name.0`` conv, ``name.1`` BN, ``name.2`` ReLU6."""
    scope = _scope(name)
    y = g.conv(
        x,
        f"{name}.0",
        f"{scope}/{name}.0/Conv",
        cin=cin,
        cout=cout,
        kernel=kernel,
        stride=stride,
        pad=kernel // 2,
        group=groups,
    )
    y = g.batchnorm(y, f"{name}.1", f"{scope}/{name}.1/BatchNormalization", cout)
    return _relu6(g, y, f"{scope}/{name}.2/Clip")


def mobilenet_v2(
    *, random_weights: bool = False, seed: int = 0, batch: int = 1, image: int = 224
) -> onnx.ModelProto:
    """torchvision mobilenet_v2: 52 Conv + 1 Gemm, 300,774,272 MACs at 224x224."""
    g = GraphBuilder("mobilenet_v2", random_weights=random_weights, seed=seed)
    y = g.input("input", [batch, 3, image, image])
    y = _cbr(g, y, "features.0", cin=3, cout=32, kernel=3, stride=2)
    channels, index = 32, 1
    for t, c, n, s in _SETTING:
        for i in range(n):
            y = _block(g, y, index, channels, c, t, s if i == 0 else 1)
            channels, index = c, index + 1
    y = _cbr(g, y, f"features.{index}", cin=channels, cout=_LAST, kernel=1)
    y = g.node("GlobalAveragePool", [y], "/GlobalAveragePool")
    y = g.node("Flatten", [y], "/Flatten", axis=1)
    y = g.gemm(y, "classifier.1", "/classifier/classifier.1/Gemm", fin=_LAST, fout=1000)
    g.output(y)
    return g.model()
