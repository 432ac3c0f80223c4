"""ResNet-18 and ResNet-50 with torchvision's topology, names and shapes (3x224x224, batch 1).

Node names follow the torch ONNX exporter (``/layer1/layer1.0/conv1/Conv``) and
weight names the torchvision state dict (``layer1.0.conv1.weight``), so a
report on a bundled model reads like one on an exported model.
BatchNormalization stays a separate node (training-mode export, not folded).
"""

from __future__ import annotations

import onnx
from joule.models.graph import GraphBuilder

_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (width, first stride) of layer1..4


def _conv_bn(
    g: GraphBuilder,
    x: str,
    scope: str,
    prefix: str,
    conv: str,
    bn: str,
    *,
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
) -> str:
    y = g.conv(
        x,
        f"{prefix}{conv}",
        f"{scope}/{conv}/Conv",
        cin=cin,
        cout=cout,
        kernel=kernel,
        stride=stride,
        pad=kernel // 2,
    )
    return g.batchnorm(y, f"{prefix}{bn}", f"{scope}/{bn}/BatchNormalization", cout)


def _block(
    g: GraphBuilder, x: str, layer: int, index: int, cin: int, width: int, stride: int, deep: bool
) -> tuple[str, int]:
    """One BasicBlock (resnet18/34) or Bottleneck (resnet50+); returns (output, channels)."""
    name = f"layer{layer}.{index}"
    scope = f"/layer{layer}/{name}"
    pre = f"{name}."
    if deep:
        cout = width * 4
        y = _conv_bn(g, x, scope, pre, "conv1", "bn1", cin=cin, cout=width, kernel=1)
        y = g.node("Relu", [y], f"{scope}/relu/Relu")
        y = _conv_bn(
            g, y, scope, pre, "conv2", "bn2", cin=width, cout=width, kernel=3, stride=stride
        )
        y = g.node("Relu", [y], f"{scope}/relu_1/Relu")
        y = _conv_bn(g, y, scope, pre, "conv3", "bn3", cin=width, cout=cout, kernel=1)
    else:
        cout = width
        y = _conv_bn(g, x, scope, pre, "conv1", "bn1", cin=cin, cout=width, kernel=3, stride=stride)
        y = g.node("Relu", [y], f"{scope}/relu/Relu")
        y = _conv_bn(g, y, scope, pre, "conv2", "bn2", cin=width, cout=width, kernel=3)
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = g.conv(
            x,
            f"{name}.downsample.0",
            f"{scope}/downsample/downsample.0/Conv",
            cin=cin,
            cout=cout,
            kernel=1,
            stride=stride,
        )
        shortcut = g.batchnorm(
            shortcut,
            f"{name}.downsample.1",
            f"{scope}/downsample/downsample.1/BatchNormalization",
            cout,
        )
    y = g.node("Add", [y, shortcut], f"{scope}/Add")
    return g.node("Relu", [y], f"{scope}/relu_{2 if deep else 1}/Relu"), cout


def resnet(
    blocks: tuple[int, int, int, int],
    *,
    deep: bool,
    name: str,
    random_weights: bool = False,
    seed: int = 0,
    image: int = 224,
    classes: int = 1000,
) -> onnx.ModelProto:
    g = GraphBuilder(name, random_weights=random_weights, seed=seed)
    x = g.input("input", [1, 3, image, image])
    y = _conv_bn(g, x, "", "", "conv1", "bn1", cin=3, cout=64, kernel=7, stride=2)
    y = g.node("Relu", [y], "/relu/Relu")
    y = g.node(
        "MaxPool", [y], "/maxpool/MaxPool", kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4
    )
    channels = 64
    for layer, ((width, stride), count) in enumerate(zip(_STAGES, blocks, strict=True), start=1):
        for index in range(count):
            y, channels = _block(
                g, y, layer, index, channels, width, stride if index == 0 else 1, deep
            )
    y = g.node("GlobalAveragePool", [y], "/avgpool/GlobalAveragePool")
    y = g.node("Flatten", [y], "/Flatten", axis=1)
    y = g.gemm(y, "fc", "/fc/Gemm", fin=channels, fout=classes)
    g.output(y)
    return g.model()


def resnet18(*, random_weights: bool = False, seed: int = 0, image: int = 224) -> onnx.ModelProto:
    """torchvision resnet18: 20 Conv + 1 Gemm, 1.81 GMACs at 224x224."""
    return resnet(
        (2, 2, 2, 2),
        deep=False,
        name="resnet18",
        random_weights=random_weights,
        seed=seed,
        image=image,
    )


def resnet50(*, random_weights: bool = False, seed: int = 0, image: int = 224) -> onnx.ModelProto:
    """torchvision resnet50: 53 Conv + 1 Gemm, 4.09 GMACs at 224x224."""
    return resnet(
        (3, 4, 6, 3),
        deep=True,
        name="resnet50",
        random_weights=random_weights,
        seed=seed,
        image=image,
    )
