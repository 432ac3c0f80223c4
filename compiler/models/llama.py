"""One Llama-2-7B decoder block (Touvron et al. 2023): prefill and a one-token decode step.

Hidden 4096, 32 heads x 128 (no grouped-query attention in the 7B model), a
SwiGLU FFN of 11008, pre-norm RMSNorm (eps 1e-5) and rotary position
embeddings. Names follow Hugging Face's ``LlamaDecoderLayer``
(``model.layers.0.self_attn.q_proj.weight``) and the torch exporter's node
scopes (``/model/layers.0/self_attn/q_proj/MatMul``). The projections carry no
bias, as in Llama. Weights are graph inputs (shape-only), so the file stays a
few kilobytes instead of 200 M parameters.

* ``llama2_block_prefill``: 2048 tokens. Q/K/V/O are [2048 x 4096] x [4096 x 4096],
  gate/up [2048 x 4096] x [4096 x 11008], down [2048 x 11008] x [11008 x 4096];
  QK^T and AV are batched over 32 heads, 2048 x 2048 x 128 each. The causal mask
  is a graph input ``attention_mask`` [1, 1, 2048, 2048] (added to the scores,
  0 or -inf), as Hugging Face passes it. Outputs: the block's hidden states and
  the new keys/values (``present.0.key``/``present.0.value``, after RoPE).
* ``llama2_block_decode``: one token (M = 1 in every projection) against a
  static KV cache of 2048 positions (``past_key_values.0.key``/``.value``, graph
  inputs [1, 32, 2048, 128]). The step is the last position of a full cache: the
  new key/value are written into slot 2047 (ScatterND, as with a static cache)
  and the token attends to all 2048 slots, so QK^T is 1 x 2048 x 128 and AV
  1 x 128 x 2048 per head, and no mask is needed.

``cos``/``sin`` (the rotary tables for the positions in this step, [1, 1, S, 128])
are graph inputs, as ``position_embeddings`` are in Hugging Face. RMSNorm is
written out as the exporter writes it below opset 23 (Pow, ReduceMean, Add,
Sqrt, Reciprocal, Mul, Mul); SiLU as Sigmoid and Mul. These, softmax, RoPE's
Slice/Neg/Concat/Mul/Add and the residual Adds are not MACs: Joule lists them
and does not map them.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from joule.models.graph import GraphBuilder

_SCOPE = "/model/layers.0"
_PREFIX = "model.layers.0"


def llama2_block_prefill(
    *,
    seq: int = 2048,
    hidden: int = 4096,
    heads: int = 32,
    ffn: int = 11008,
    batch: int = 1,
    random_weights: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    """A Llama-2-7B decoder block over ``seq`` prompt tokens (causal attention)."""
    return _llama2_block(
        "llama2_block_prefill",
        seq=seq,
        cache=0,
        hidden=hidden,
        heads=heads,
        ffn=ffn,
        batch=batch,
        random_weights=random_weights,
        seed=seed,
    )


def llama2_block_decode(
    *,
    cache: int = 2048,
    hidden: int = 4096,
    heads: int = 32,
    ffn: int = 11008,
    batch: int = 1,
    random_weights: bool = False,
    seed: int = 0,
) -> onnx.ModelProto:
    """One generated token through a Llama-2-7B decoder block with a ``cache``-slot KV cache."""
    return _llama2_block(
        "llama2_block_decode",
        seq=1,
        cache=cache,
        hidden=hidden,
        heads=heads,
        ffn=ffn,
        batch=batch,
        random_weights=random_weights,
        seed=seed,
    )


def _llama2_block(
    name: str,
    *,
    seq: int,
    cache: int,
    hidden: int,
    heads: int,
    ffn: int,
    batch: int,
    random_weights: bool,
    seed: int,
) -> onnx.ModelProto:
    """``cache == 0``: prefill of ``seq`` tokens; else one token (``seq == 1``) into the cache."""
    if hidden % heads:
        raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
    dh = hidden // heads
    if dh % 2:
        raise ValueError(f"head size {dh} must be even for the rotary embedding")
    g = GraphBuilder(name, random_weights=random_weights, seed=seed)
    x = g.input("hidden_states", [batch, seq, hidden])
    cos = g.input("cos", [batch, 1, seq, dh])
    sin = g.input("sin", [batch, 1, seq, dh])
    mask = g.input("attention_mask", [batch, 1, seq, seq]) if not cache else None
    heads_shape = g.constant("heads_shape", [batch, seq, heads, dh])
    model_shape = g.constant("model_shape", [batch, seq, hidden])

    def linear(v: str, module: str, fin: int, fout: int) -> str:
        """A bias-free nn.Linear as the exporter writes it: MatMul by the [fin, fout] weight."""
        w = g.weight(f"{_PREFIX}.{module}.weight", [fin, fout])
        return g.node("MatMul", [v, w], f"{_SCOPE}/{module.replace('.', '/')}/MatMul")

    def rmsnorm(v: str, module: str) -> str:
        scope = f"{_SCOPE}/{module}"
        w = g.weight(f"{_PREFIX}.{module}.weight", [hidden], init="ones")
        two = g.constant(f"{scope}/two", np.float32(2.0))
        eps = g.constant(f"{scope}/eps", np.float32(1e-5))
        sq = g.node("Pow", [v, two], f"{scope}/Pow")
        var = g.node("ReduceMean", [sq], f"{scope}/ReduceMean", axes=[-1], keepdims=1)
        var = g.node("Add", [var, eps], f"{scope}/Add")
        rms = g.node("Sqrt", [var], f"{scope}/Sqrt")
        inv = g.node("Reciprocal", [rms], f"{scope}/Reciprocal")
        y = g.node("Mul", [v, inv], f"{scope}/Mul")
        return g.node("Mul", [w, y], f"{scope}/Mul_1")

    half = dh // 2
    starts_lo = g.constant("rope/starts_lo", [0])
    ends_lo = g.constant("rope/ends_lo", [half])
    starts_hi = g.constant("rope/starts_hi", [half])
    ends_hi = g.constant("rope/ends_hi", [dh])
    last_axis = g.constant("rope/axes", [3])

    def rope(v: str, scope: str) -> str:
        """v * cos + rotate_half(v) * sin, rotate_half(v) = cat(-v[..., h:], v[..., :h])."""
        lo = g.node("Slice", [v, starts_lo, ends_lo, last_axis], f"{scope}/Slice")
        hi = g.node("Slice", [v, starts_hi, ends_hi, last_axis], f"{scope}/Slice_1")
        neg = g.node("Neg", [hi], f"{scope}/Neg")
        rot = g.node("Concat", [neg, lo], f"{scope}/Concat", axis=-1)
        a = g.node("Mul", [v, cos], f"{scope}/Mul")
        b = g.node("Mul", [rot, sin], f"{scope}/Mul_1")
        return g.node("Add", [a, b], f"{scope}/Add")

    attn = f"{_SCOPE}/self_attn"
    h = rmsnorm(x, "input_layernorm")

    def project(proj: str) -> str:
        y = linear(h, f"self_attn.{proj}", hidden, hidden)  # [B, S, hidden]
        y = g.node("Reshape", [y, heads_shape], f"{attn}/{proj}/Reshape")
        return g.node("Transpose", [y], f"{attn}/{proj}/Transpose", perm=[0, 2, 1, 3])

    q = rope(project("q_proj"), f"{attn}/rotary_q")  # [B, H, S, dh]
    k = rope(project("k_proj"), f"{attn}/rotary_k")  # [B, H, S, dh]
    v = project("v_proj")  # [B, H, S, dh]
    if cache:
        # Static cache, full: this token's key/value go into the last slot.
        past_k = g.input("past_key_values.0.key", [batch, heads, cache, dh])
        past_v = g.input("past_key_values.0.value", [batch, heads, cache, dh])
        slots = np.zeros((batch, heads, 1, 3), dtype=np.int64)
        slots[..., 0] = np.arange(batch)[:, None, None]
        slots[..., 1] = np.arange(heads)[None, :, None]
        slots[..., 2] = cache - 1
        index = g.constant("cache_position", slots)
        k = g.node("ScatterND", [past_k, index, k], f"{attn}/key_cache/ScatterND")
        v = g.node("ScatterND", [past_v, index, v], f"{attn}/value_cache/ScatterND")
    g.output(k)
    g.output(v)
    kt = g.node("Transpose", [k], f"{attn}/Transpose", perm=[0, 1, 3, 2])  # [B, H, dh, T]
    scores = g.node("MatMul", [q, kt], f"{attn}/MatMul")  # [B, H, S, T]
    scale = g.constant("attention_scale", np.float32(1.0 / math.sqrt(dh)))
    scores = g.node("Mul", [scores, scale], f"{attn}/Mul")
    if mask is not None:
        scores = g.node("Add", [scores, mask], f"{attn}/Add")
    probs = g.node("Softmax", [scores], f"{attn}/Softmax", axis=-1)
    ctx = g.node("MatMul", [probs, v], f"{attn}/MatMul_1")  # [B, H, S, dh]
    ctx = g.node("Transpose", [ctx], f"{attn}/Transpose_1", perm=[0, 2, 1, 3])
    ctx = g.node("Reshape", [ctx, model_shape], f"{attn}/Reshape")
    o = linear(ctx, "self_attn.o_proj", hidden, hidden)
    x = g.node("Add", [x, o], f"{_SCOPE}/Add")

    h = rmsnorm(x, "post_attention_layernorm")
    mlp = f"{_SCOPE}/mlp"
    gate = linear(h, "mlp.gate_proj", hidden, ffn)
    gate = g.node(
        "Mul", [gate, g.node("Sigmoid", [gate], f"{mlp}/act_fn/Sigmoid")], f"{mlp}/act_fn/Mul"
    )
    up = linear(h, "mlp.up_proj", hidden, ffn)
    f = g.node("Mul", [gate, up], f"{mlp}/Mul")
    f = linear(f, "mlp.down_proj", ffn, hidden)
    y = g.node("Add", [x, f], f"{_SCOPE}/Add_1")
    g.output(y)
    # The block's output first, then the cache (Hugging Face's order: logits, present).
    g.outputs.insert(0, g.outputs.pop())
    return g.model()
