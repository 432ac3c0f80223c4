"""VGG-16 (configuration D) with torchvision's topology, names and shapes (3x224x224).

13 Conv + 3 Gemm, 15,470,264,320 MACs. Names follow torchvision (``features.0``,
``classifier.0``) and the torch ONNX exporter. The adaptive average pool is the
identity at 224x224 (the features are already 7x7) and is left out, as are the
inference-time dropouts.
"""

from __future__ import annotations

import onnx
from joule.models.graph import GraphBuilder

# Output channels per conv; "M" is a 2x2/2 max pool (torchvision's cfgs["D"]).
_CFG_D: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)  # fmt: skip
_FCS = ((0, 512 * 7 * 7, 4096), (3, 4096, 4096), (6, 4096, 1000))  # (classifier index, in, out)


def vgg16(
    *, random_weights: bool = False, seed: int = 0, batch: int = 1, image: int = 224
) -> onnx.ModelProto:
    """torchvision vgg16: 13 Conv + 3 Gemm, 15.47 GMACs at 224x224."""
    g = GraphBuilder("vgg16", random_weights=random_weights, seed=seed)
    y = g.input("input", [batch, 3, image, image])
    channels, index = 3, 0
    for item in _CFG_D:
        if item == "M":
            y = g.node(
                "MaxPool",
                [y],
                f"/features/features.{index}/MaxPool",
                kernel_shape=[2, 2],
                strides=[2, 2],
            )
            index += 1
            continue
        cout = int(item)
        y = g.conv(
            y,
            f"features.{index}",
            f"/features/features.{index}/Conv",
            cin=channels,
            cout=cout,
            kernel=3,
            pad=1,
            bias=True,
        )
        y = g.node("Relu", [y], f"/features/features.{index + 1}/Relu")
        channels, index = cout, index + 2
    y = g.node("Flatten", [y], "/Flatten", axis=1)
    for k, (cindex, fin, fout) in enumerate(_FCS):
        y = g.gemm(
            y, f"classifier.{cindex}", f"/classifier/classifier.{cindex}/Gemm", fin=fin, fout=fout
        )
        if k < len(_FCS) - 1:
            y = g.node("Relu", [y], f"/classifier/classifier.{cindex + 1}/Relu")
    g.output(y)
    return g.model()
