"""AlexNet with torchvision's topology, names and shapes (3x224x224, batch 1).

torchvision's single-tower variant (CONV1 has 64 filters, no groups), 714.19 M MACs.
Node names follow the torch ONNX exporter (``/features/features.0/Conv``) and weight
names the torchvision state dict (``features.0.weight``). The adaptive average pool
is the identity at 224x224 (the features are already 6x6) and is left out; the
dropouts are inference no-ops and are left out too.
"""

from __future__ import annotations

import onnx
from joule.models.graph import GraphBuilder

# (features index, cin, cout, kernel, stride, pad, maxpool after)
_CONVS = (
    (0, 3, 64, 11, 4, 2, True),
    (3, 64, 192, 5, 1, 2, True),
    (6, 192, 384, 3, 1, 1, False),
    (8, 384, 256, 3, 1, 1, False),
    (10, 256, 256, 3, 1, 1, True),
)
_FCS = ((1, 256 * 6 * 6, 4096), (4, 4096, 4096), (6, 4096, 1000))  # (classifier index, in, out)


def alexnet(
    *, random_weights: bool = False, seed: int = 0, batch: int = 1, image: int = 224
) -> onnx.ModelProto:
    """torchvision alexnet: 5 Conv + 3 Gemm, 714,188,480 MACs at 224x224."""
    g = GraphBuilder("alexnet", random_weights=random_weights, seed=seed)
    y = g.input("input", [batch, 3, image, image])
    for index, cin, cout, kernel, stride, pad, pool in _CONVS:
        scope = f"/features/features.{index}"
        y = g.conv(
            y,
            f"features.{index}",
            f"{scope}/Conv",
            cin=cin,
            cout=cout,
            kernel=kernel,
            stride=stride,
            pad=pad,
            bias=True,
        )
        y = g.node("Relu", [y], f"/features/features.{index + 1}/Relu")
        if pool:
            y = g.node(
                "MaxPool",
                [y],
                f"/features/features.{index + 2}/MaxPool",
                kernel_shape=[3, 3],
                strides=[2, 2],
            )
    y = g.node("Flatten", [y], "/Flatten", axis=1)
    for k, (index, fin, fout) in enumerate(_FCS):
        y = g.gemm(
            y, f"classifier.{index}", f"/classifier/classifier.{index}/Gemm", fin=fin, fout=fout
        )
        if k < len(_FCS) - 1:
            y = g.node("Relu", [y], f"/classifier/classifier.{index + 1}/Relu")
    g.output(y)
    return g.model()
