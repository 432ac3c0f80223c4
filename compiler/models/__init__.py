"""Bundled models, built by Joule's own code with onnx.helper (nothing is downloaded).

``bundled_model(name)`` gives a shape-only model (weights are graph inputs);
``random_weights=True`` gives the same topology with seeded random
initializers, for numeric checks against onnxruntime.
"""

from __future__ import annotations

from collections.abc import Callable

import onnx
from joule.errors import ModelError
from joule.models.alexnet import alexnet
from joule.models.bert import bert_layer
from joule.models.llama import llama2_block_decode, llama2_block_prefill
from joule.models.mobilenet import mobilenet_v2
from joule.models.resnet import resnet18, resnet50
from joule.models.transformer import transformer
from joule.models.vgg import vgg16

_BUILDERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "transformer": transformer,
    "alexnet": alexnet,
    "vgg16": vgg16,
    "mobilenet_v2": mobilenet_v2,
    "bert_layer": bert_layer,
    "llama2_block_prefill": llama2_block_prefill,
    "llama2_block_decode": llama2_block_decode,
}
BUNDLED_MODELS: tuple[str, ...] = tuple(_BUILDERS)


def bundled_model(name: str, *, random_weights: bool = False, seed: int = 0) -> onnx.ModelProto:
    """The bundled model ``name`` (one of ``BUNDLED_MODELS``) as an ONNX ModelProto."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ModelError(
            f"no bundled model named {name!r}",
            hint=f"use one of {', '.join(BUNDLED_MODELS)} or give the path of an .onnx file",
        ) from None
    return builder(random_weights=random_weights, seed=seed)


__all__ = [
    "BUNDLED_MODELS",
    "alexnet",
    "bert_layer",
    "bundled_model",
    "llama2_block_decode",
    "llama2_block_prefill",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "transformer",
    "vgg16",
]
