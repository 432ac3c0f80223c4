"""One BERT-base encoder layer (Devlin et al. 2019): hidden 768, 12 heads, FFN 3072.

Post-norm, as in BERT: x + Attention(x) -> LayerNorm -> + FFN -> LayerNorm, with
GELU written out with Erf (the form exporters emit below opset 20). Names follow
Hugging Face's ``BertLayer`` (``encoder.layer.0.attention.self.query``). Six
activation x weight MatMuls and two batched activation x activation MatMuls per
head group: 931,135,488 MACs at sequence 128.
"""

from __future__ import annotations

import math

import onnx
from joule.models.graph import GraphBuilder

_SCOPE = "/encoder/layer.0"
_PREFIX = "encoder.layer.0"


def bert_layer(
    *,
    seq: int = 128,
    hidden: int = 768,
    heads: int = 12,
    ffn: int = 3072,
    batch: int = 1,
    random_weights: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    """A BERT-base encoder layer on a [batch, seq, hidden] input."""
    if hidden % heads:
        raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
    dh = hidden // heads
    g = GraphBuilder("bert_layer", random_weights=random_weights, seed=seed)
    x = g.input("hidden_states", [batch, seq, hidden])
    heads_shape = g.constant("heads_shape", [batch, seq, heads, dh])
    model_shape = g.constant("model_shape", [batch, seq, hidden])

    def layernorm(v: str, prefix: str, node: str) -> str:
        scale = g.weight(f"{prefix}.weight", [hidden], init="ones")
        bias = g.weight(f"{prefix}.bias", [hidden])
        return g.node("LayerNormalization", [v, scale, bias], node, axis=-1, epsilon=1e-12)

    def project(name: str, perm: list[int]) -> str:
        scope = f"{_SCOPE}/attention/self/{name}"
        y = g.linear(x, f"{_PREFIX}.attention.self.{name}", scope, fin=hidden, fout=hidden)
        y = g.node("Reshape", [y, heads_shape], f"{scope}/Reshape")
        return g.node("Transpose", [y], f"{scope}/Transpose", perm=perm)

    attn = f"{_SCOPE}/attention/self"
    q = project("query", [0, 2, 1, 3])  # [B, H, S, dh]
    k = project("key", [0, 2, 3, 1])  # [B, H, dh, S]
    v = project("value", [0, 2, 1, 3])  # [B, H, S, dh]
    scores = g.node("MatMul", [q, k], f"{attn}/MatMul")  # [B, H, S, S]
    scale = g.constant("attention_scale", [1.0 / math.sqrt(dh)])
    scores = g.node("Mul", [scores, scale], f"{attn}/Mul")
    probs = g.node("Softmax", [scores], f"{attn}/Softmax", axis=-1)
    ctx = g.node("MatMul", [probs, v], f"{attn}/MatMul_1")  # [B, H, S, dh]
    ctx = g.node("Transpose", [ctx], f"{attn}/Transpose_3", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, model_shape], f"{attn}/Reshape_3")
    out = f"{_SCOPE}/attention/output"
    o = g.linear(ctx, f"{_PREFIX}.attention.output.dense", f"{out}/dense", fin=hidden, fout=hidden)
    o = g.node("Add", [o, x], f"{out}/Add")
    h = layernorm(o, f"{_PREFIX}.attention.output.LayerNorm", f"{out}/LayerNorm/LayerNormalization")

    inter = f"{_SCOPE}/intermediate"
    f = g.linear(h, f"{_PREFIX}.intermediate.dense", f"{inter}/dense", fin=hidden, fout=ffn)
    f = _gelu(g, f, f"{inter}/intermediate_act_fn")
    end = f"{_SCOPE}/output"
    f = g.linear(f, f"{_PREFIX}.output.dense", f"{end}/dense", fin=ffn, fout=hidden)
    f = g.node("Add", [f, h], f"{end}/Add")
    y = layernorm(f, f"{_PREFIX}.output.LayerNorm", f"{end}/LayerNorm/LayerNormalization")
    g.output(y)
    return g.model()


def _gelu(g: GraphBuilder, x: str, scope: str) -> str:
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)), as the torch exporter writes it."""
    root2 = g.constant(f"{scope}/sqrt2", [math.sqrt(2.0)])
    one = g.constant(f"{scope}/one", [1.0])
    half = g.constant(f"{scope}/half", [0.5])
    y = g.node("Div", [x, root2], f"{scope}/Div")
    y = g.node("Erf", [y], f"{scope}/Erf")
    y = g.node("Add", [y, one], f"{scope}/Add")
    y = g.node("Mul", [x, y], f"{scope}/Mul")
    return g.node("Mul", [y, half], f"{scope}/Mul_1")
