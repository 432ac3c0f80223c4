"""The bundled Llama-2-7B decoder block (prefill, decode): loop nests, MACs, unmapped ops, numerics.

Every expected number is computed here by hand from Llama-2-7B's shapes (hidden
4096, 32 heads x 128, FFN 11008; 2048 prompt tokens, or one token against a
2048-slot KV cache). Lowering only (``joule lower --json``), plus small-shape
runs of the same builders in onnxruntime against a numpy Llama block.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from joule.models import BUNDLED_MODELS, bundled_model
from joule.models.llama import llama2_block_decode, llama2_block_prefill
from onnx import numpy_helper

HIDDEN, HEADS, DH, FFN, TOKENS = 4096, 32, 128, 11008, 2048
JOULE = Path(sys.executable).with_name("joule")
ATTN = "/model/layers.0/self_attn"
MLP = "/model/layers.0/mlp"


def _expected(m: int, t: int) -> dict[str, tuple[dict[str, int], int]]:
    """Loop nest -> (dims, MACs) for M query tokens against T keys."""

    def proj(k: int, n: int) -> tuple[dict[str, int], int]:
        return {"B0": 1, "M": m, "N": n, "K": k}, m * k * n

    return {
        f"{ATTN}/q_proj/MatMul": proj(HIDDEN, HIDDEN),
        f"{ATTN}/k_proj/MatMul": proj(HIDDEN, HIDDEN),
        f"{ATTN}/v_proj/MatMul": proj(HIDDEN, HIDDEN),
        # scores = Q K^T per head: M x T, reducing over the head size
        f"{ATTN}/MatMul": ({"B0": 1, "B1": HEADS, "M": m, "N": t, "K": DH}, HEADS * m * t * DH),
        # context = P V per head: M x DH, reducing over the T keys
        f"{ATTN}/MatMul_1": ({"B0": 1, "B1": HEADS, "M": m, "N": DH, "K": t}, HEADS * m * DH * t),
        f"{ATTN}/o_proj/MatMul": proj(HIDDEN, HIDDEN),
        f"{MLP}/gate_proj/MatMul": proj(HIDDEN, FFN),
        f"{MLP}/up_proj/MatMul": proj(HIDDEN, FFN),
        f"{MLP}/down_proj/MatMul": proj(FFN, HIDDEN),
    }


# (model, query tokens, keys, total MACs written out)
CASES = [
    # 4 x 2048*4096*4096 + 3 x 2048*4096*11008 + 2 x 32*2048*2048*128
    (
        "llama2_block_prefill",
        TOKENS,
        TOKENS,
        4 * 34_359_738_368 + 3 * 92_341_796_864 + 2 * 17_179_869_184,
    ),
    # 4 x 4096*4096 + 3 x 4096*11008 + 2 x 32*2048*128
    ("llama2_block_decode", 1, TOKENS, 4 * 16_777_216 + 3 * 45_088_768 + 2 * 8_388_608),
]

RMSNORM_OPS = ["Pow", "ReduceMean", "Add", "Sqrt", "Reciprocal", "Mul", "Mul_1"]
ROPE_OPS = ["Slice", "Slice_1", "Neg", "Concat", "Mul", "Mul_1", "Add"]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def lowered(request: pytest.FixtureRequest) -> tuple[tuple, dict]:
    name = request.param[0]
    run = subprocess.run(
        [str(JOULE), "lower", "--json", name], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    return request.param, json.loads(run.stdout)


def test_joule_lower_gives_the_hand_counted_loop_nests(lowered: tuple[tuple, dict]) -> None:
    (name, m, t, total), record = lowered
    expected = _expected(m, t)
    nests = {n["name"]: n for n in record["loopnests"]}
    assert list(nests) == list(expected)  # nine MAC layers, in graph order
    for layer, (dims, macs) in expected.items():
        nest = nests[layer]
        assert nest["op"] == "MatMul"
        assert nest["dims"] == dims, layer
        assert nest["reduction_dims"] == ["K"]
        assert nest["macs"] == macs == int(np.prod(list(dims.values())))
    assert record["model"] == name
    assert record["total_macs"] == total == sum(macs for _, macs in expected.values())


def test_projection_weights_are_the_llama_matrices(lowered: tuple[tuple, dict]) -> None:
    (_, m, t, _), record = lowered
    tensors = {n["name"]: {x["role"]: x for x in n["tensors"]} for n in record["loopnests"]}
    weight = tensors[f"{MLP}/gate_proj/MatMul"]["weight"]
    assert weight["name"] == "model.layers.0.mlp.gate_proj.weight"
    assert weight["projection"] == ["K", "N"]
    # attention: both operands are activations batched over the heads
    scores = tensors[f"{ATTN}/MatMul"]
    assert scores["input"]["projection"] == ["B0", "B1", "M", "K"]
    assert scores["weight"]["projection"] == ["B0", "B1", "K", "N"]


def test_norms_activations_softmax_and_rope_are_listed_not_mapped(
    lowered: tuple[tuple, dict],
) -> None:
    (name, m, t, _), record = lowered
    ops = {u["name"]: (u["op"], u["elements"]) for u in record["unmapped_ops"]}
    for norm in ("input_layernorm", "post_attention_layernorm"):
        for node in RMSNORM_OPS:
            assert f"/model/layers.0/{norm}/{node}" in ops
        assert ops[f"/model/layers.0/{norm}/Mul_1"] == ("Mul", m * HIDDEN)
    for rot in ("rotary_q", "rotary_k"):
        for node in ROPE_OPS:
            assert f"{ATTN}/{rot}/{node}" in ops
    assert ops[f"{ATTN}/Softmax"] == ("Softmax", HEADS * m * t)
    assert ops[f"{MLP}/act_fn/Sigmoid"] == ("Sigmoid", m * FFN)  # SiLU = x * sigmoid(x)
    assert ops[f"{MLP}/act_fn/Mul"] == ("Mul", m * FFN)
    assert ops[f"{MLP}/Mul"] == ("Mul", m * FFN)  # SwiGLU's gate * up
    cache = [op for op, _ in ops.values() if op == "ScatterND"]
    assert len(cache) == (2 if name == "llama2_block_decode" else 0)
    assert not any(op in ("MatMul", "Gemm", "Conv") for op, _ in ops.values())


def test_registered_and_shape_only_files_stay_small() -> None:
    assert {"llama2_block_prefill", "llama2_block_decode"} <= set(BUNDLED_MODELS)
    for name in ("llama2_block_prefill", "llama2_block_decode"):
        model = bundled_model(name)
        assert model.ByteSize() < 20_000  # weights are graph inputs, not 200 M floats
        inputs = {
            i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input
        }
        assert inputs["model.layers.0.mlp.down_proj.weight"] == [FFN, HIDDEN]
        assert inputs["model.layers.0.self_attn.q_proj.weight"] == [HIDDEN, HIDDEN]
    decode = bundled_model("llama2_block_decode")
    inputs = {
        i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in decode.graph.input
    }
    assert inputs["past_key_values.0.key"] == [1, HEADS, TOKENS, DH]
    assert inputs["past_key_values.0.value"] == [1, HEADS, TOKENS, DH]
    assert inputs["hidden_states"] == [1, 1, HIDDEN]


# -- numerics at small shapes: the builders compute a Llama block --------------------------

SMALL = {"hidden": 32, "heads": 4, "ffn": 48}
EPS = 1e-5


def _weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _rope_tables(positions: np.ndarray, dh: int) -> tuple[np.ndarray, np.ndarray]:
    inv_freq = 1.0 / 10000 ** (np.arange(0, dh, 2) / dh)
    freqs = positions[:, None] * inv_freq[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)
    return (np.cos(emb)[None, None].astype(np.float32), np.sin(emb)[None, None].astype(np.float32))


def _reference(x, cos, sin, w, mask, heads, past=None):
    """A numpy Llama decoder block (Hugging Face's LlamaDecoderLayer)."""
    p = "model.layers.0."
    b, s, hidden = x.shape
    dh = hidden // heads

    def rms(v, name):
        return w[p + name + ".weight"] * (v / np.sqrt((v * v).mean(-1, keepdims=True) + EPS))

    def split(v):
        return v.reshape(b, s, heads, dh).transpose(0, 2, 1, 3)

    def rope(v):
        rot = np.concatenate([-v[..., dh // 2 :], v[..., : dh // 2]], axis=-1)
        return v * cos + rot * sin

    h = rms(x, "input_layernorm")
    q = rope(split(h @ w[p + "self_attn.q_proj.weight"]))
    k = rope(split(h @ w[p + "self_attn.k_proj.weight"]))
    v = split(h @ w[p + "self_attn.v_proj.weight"])
    if past is not None:
        k = np.concatenate([past[0][:, :, :-1], k], axis=2)
        v = np.concatenate([past[1][:, :, :-1], v], axis=2)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh) + mask
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(b, s, hidden)
    x = x + ctx @ w[p + "self_attn.o_proj.weight"]
    h = rms(x, "post_attention_layernorm")
    gate = h @ w[p + "mlp.gate_proj.weight"]
    f = (gate / (1 + np.exp(-gate))) * (h @ w[p + "mlp.up_proj.weight"])
    return x + f @ w[p + "mlp.down_proj.weight"], k, v


def _run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    onnx.checker.check_model(model, full_check=True)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def test_small_prefill_and_decode_match_numpy_and_each_other() -> None:
    seq, heads, hidden = 6, SMALL["heads"], SMALL["hidden"]
    dh = hidden // heads
    prefill = llama2_block_prefill(seq=seq, random_weights=True, seed=3, **SMALL)
    decode = llama2_block_decode(cache=seq, random_weights=True, seed=3, **SMALL)
    w = _weights(prefill)
    for name, value in _weights(decode).items():
        if name.endswith(".weight"):
            np.testing.assert_array_equal(value, w[name])

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, seq, hidden)).astype(np.float32)
    cos, sin = _rope_tables(np.arange(seq, dtype=np.float64), dh)
    causal = np.triu(np.full((seq, seq), -1e9, dtype=np.float32), k=1)[None, None]
    y, key, value = _run(
        prefill, {"hidden_states": x, "cos": cos, "sin": sin, "attention_mask": causal}
    )
    ref_y, ref_k, ref_v = _reference(x, cos, sin, w, causal, heads)
    np.testing.assert_allclose(y, ref_y, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(key, ref_k, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(value, ref_v, rtol=1e-4, atol=1e-4)

    # Decoding the last token against the prefill's cache (its last slot overwritten)
    # gives the prefill's last row.
    stale = rng.standard_normal((2, 1, heads, 1, dh)).astype(np.float32)
    past_k = np.concatenate([key[:, :, :-1], stale[0]], axis=2)
    past_v = np.concatenate([value[:, :, :-1], stale[1]], axis=2)
    y1, key1, value1 = _run(
        decode,
        {
            "hidden_states": x[:, -1:],
            "cos": cos[:, :, -1:],
            "sin": sin[:, :, -1:],
            "past_key_values.0.key": past_k,
            "past_key_values.0.value": past_v,
        },
    )
    np.testing.assert_allclose(y1, y[:, -1:], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(key1, key, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(value1, value, rtol=1e-5, atol=1e-5)
    ref_y1, _, _ = _reference(
        x[:, -1:], cos[:, :, -1:], sin[:, :, -1:], w, 0.0, heads, past=(past_k, past_v)
    )
    np.testing.assert_allclose(y1, ref_y1, rtol=1e-4, atol=1e-4)


def test_down_projection_maps_at_the_latency_objective() -> None:
    """The largest projection at the latency objective: proven, at the perfect-factor
    ceiling of 64 of eyeriss's 168 PEs (docs/llama-block.md; issue 15 lifts it)."""
    from joule.ir.builders import matmul
    from joule.passes.canonicalize import drop_unit_dims
    from joule.passes.dataflow import space_constraints
    from joule.passes.mapper.map_layer import map_layer
    from joule.passes.mapper.outcome import SearchOptions
    from joule.targets import load_target

    target = load_target("eyeriss")
    nest = drop_unit_dims(matmul("down_proj", m=2048, n=4096, k=11008))
    options = SearchOptions(objective="latency", time_limit_s=2.0)
    result = map_layer(nest, target, space_constraints(nest, target), options=options)
    assert result is not None
    assert result.cost.cycles == 2048 * 4096 * 11008 // 64  # 64 of 168 PEs: perfect factors
