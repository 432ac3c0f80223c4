"""One pre-norm transformer encoder block with multi-head attention.

It exercises what convolutional networks do not: 3-D activation x weight
MatMuls (the Q/K/V/O and FFN projections) and 4-D batched activation x
activation MatMuls (QK^T and AV per head), plus Softmax and LayerNormalization.
"""

from __future__ import annotations

import math

import onnx
from joule.models.graph import GraphBuilder


def transformer(
    *,
    seq: int = 128,
    d_model: int = 256,
    heads: int = 4,
    d_ff: int = 1024,
    batch: int = 1,
    random_weights: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    if d_model % heads:
        raise ValueError(f"d_model={d_model} is not divisible by heads={heads}")
    dh = d_model // heads
    g = GraphBuilder("transformer", random_weights=random_weights, seed=seed)
    x = g.input("input", [batch, seq, d_model])

    def layernorm(v: str, prefix: str, node: str) -> str:
        scale = g.weight(f"{prefix}.weight", [d_model], init="ones")
        bias = g.weight(f"{prefix}.bias", [d_model])
        return g.node("LayerNormalization", [v, scale, bias], node, axis=-1, epsilon=1e-5)

    heads_shape = g.constant("heads_shape", [batch, seq, heads, dh])
    model_shape = g.constant("model_shape", [batch, seq, d_model])
    h = layernorm(x, "attn_norm", "/attn_norm/LayerNormalization")

    def project(name: str, perm: list[int]) -> str:
        y = g.linear(h, f"attn.{name}_proj", f"/attn/{name}_proj", fin=d_model, fout=d_model)
        y = g.node("Reshape", [y, heads_shape], f"/attn/{name}_heads/Reshape")
        return g.node("Transpose", [y], f"/attn/{name}_heads/Transpose", perm=perm)

    q = project("q", [0, 2, 1, 3])  # [B, H, S, dh]
    k = project("k", [0, 2, 3, 1])  # [B, H, dh, S]
    v = project("v", [0, 2, 1, 3])  # [B, H, S, dh]
    scores = g.node("MatMul", [q, k], "/attn/qk/MatMul")  # [B, H, S, S]
    scale = g.constant("attn_scale", [1.0 / math.sqrt(dh)])
    scores = g.node("Mul", [scores, scale], "/attn/scale/Mul")
    probs = g.node("Softmax", [scores], "/attn/Softmax", axis=-1)
    ctx = g.node("MatMul", [probs, v], "/attn/av/MatMul")  # [B, H, S, dh]
    ctx = g.node("Transpose", [ctx], "/attn/merge/Transpose", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, model_shape], "/attn/merge/Reshape")
    o = g.linear(ctx, "attn.o_proj", "/attn/o_proj", fin=d_model, fout=d_model)
    x = g.node("Add", [x, o], "/attn/residual/Add")

    h = layernorm(x, "ffn_norm", "/ffn_norm/LayerNormalization")
    h = g.linear(h, "ffn.fc1", "/ffn/fc1", fin=d_model, fout=d_ff)
    h = g.node("Relu", [h], "/ffn/Relu")
    h = g.linear(h, "ffn.fc2", "/ffn/fc2", fin=d_ff, fout=d_model)
    y = g.node("Add", [x, h], "/ffn/residual/Add")
    g.output(y)
    return g.model()
