"""Post-training quantisation of the digits CNN, run for real in onnxruntime.

Scheme (symmetric: every zero point is 0, a tensor is ``scale * q`` with integer q):

* **Weights** of every Conv/Gemm layer at b bits: q in [-(2^(b-1)-1), 2^(b-1)-1]
  (the symmetric "narrow" range; b=2 is ternary {-1, 0, 1}), one scale per tensor
  (``granularity="tensor"``) or per output channel (``"channel"``). The integers are
  computed once, stored in the ONNX file as an int8 initializer (int4 with
  ``native_int4``) and expanded by a ``DequantizeLinear`` node (``axis=0`` per channel).
* **Activations**, the tensor each Conv/Gemm layer reads (the image for conv1, the
  previous layer's Relu/MaxPool output otherwise), at b bits, one scale per tensor,
  calibrated on a subset of the training split. All of them are non-negative on the
  calibration set, so they use the unsigned range q in [0, 2^b-1] (a signed tensor would
  get [-(2^(b-1)-1), 2^(b-1)-1]). In the graph: ``QuantizeLinear`` to uint8/int8
  (round half to even, saturating), ``Clip`` to the b-bit range when b < 8 (an integer
  Clip on the uint8/int8 tensor), ``DequantizeLinear``. So the b-bit integers really
  exist as tensors in onnxruntime; for b = 4 the same graph can use ONNX's native
  uint4/int4 types instead (``native_int4``, opset 21) and a test checks that both give
  identical logits. b = 8 needs no Clip (uint8 is the 8-bit range).
* **Biases** of a layer whose weights and input are both quantised become int32 with
  scale ``s_w * s_a`` (as integer inference adds them to the int32 accumulator);
  otherwise they stay float.
* ``None`` bits leave that tensor in float. The logits (fc2's output) stay float.

The Conv/Gemm themselves run in onnxruntime's float kernels on the dequantised values,
which are exactly ``s_w * q_w`` and ``s_a * q_a``: the products are the integer products
times the scales, accumulated in float32 (the standard QDQ semantics; graph
optimisations are off so onnxruntime does not rewrite the graph). Nothing is estimated.

Clipping ranges (``calibration``): ``"max"`` takes the largest magnitude (of the weights,
or of the activation over the calibration images); ``"mse"`` tries clipping at
r x max for r in a fixed grid (0.02 .. 1) and keeps the r whose quantise-dequantise has
the least squared error on the same values (per channel for per-channel weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import onnx
from joule.accuracy.net import LAYER_NAMES, LAYERS
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 9  # onnxruntime 1.32 refuses onnx 1.23's newer default
OPSET_INT4 = 21
IR_VERSION_INT4 = 10
GRANULARITIES = ("tensor", "channel")
CALIBRATIONS = ("max", "mse")
MIN_BITS, MAX_BITS = 2, 8
_MSE_RATIOS = np.linspace(0.02, 1.0, 50)

Bits = int | None  # None: that tensor stays float


@dataclass(frozen=True)
class QuantConfig:
    """One quantisation of the network: bits per layer for weights and activations.

    ``weight_bits``/``act_bits``: one width for every layer, or a mapping layer -> width
    (layers not named stay float). Build with :meth:`uniform`, :meth:`mixed` or :func:`parse`.
    """

    name: str
    weight_bits: Bits | Mapping[str, Bits] = None
    act_bits: Bits | Mapping[str, Bits] = None
    granularity: str = "channel"
    calibration: str = "mse"

    def __post_init__(self) -> None:
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"granularity {self.granularity!r}: one of {GRANULARITIES}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration {self.calibration!r}: one of {CALIBRATIONS}")
        for kind in ("weight_bits", "act_bits"):
            value = getattr(self, kind)
            if isinstance(value, Mapping):
                unknown = set(value) - set(LAYER_NAMES)
                if unknown:
                    raise ValueError(f"{kind}: unknown layers {sorted(unknown)}; {LAYER_NAMES}")
                widths = list(value.values())
            else:
                widths = [value]
            for b in widths:
                if b is not None and not (MIN_BITS <= int(b) <= MAX_BITS):
                    raise ValueError(f"{kind}: {b} bits outside {MIN_BITS}..{MAX_BITS}")

    @classmethod
    def uniform(
        cls,
        weight_bits: Bits,
        act_bits: Bits,
        granularity: str = "channel",
        calibration: str = "mse",
    ) -> QuantConfig:
        w = "f" if weight_bits is None else weight_bits
        a = "f" if act_bits is None else act_bits
        return cls(f"w{w}a{a}-{granularity}", weight_bits, act_bits, granularity, calibration)

    @classmethod
    def mixed(
        cls,
        bits: Mapping[str, tuple[Bits, Bits]],
        granularity: str = "channel",
        calibration: str = "mse",
        name: str | None = None,
    ) -> QuantConfig:
        """``bits``: layer -> (weight bits, activation bits)."""
        label = name or "mixed:" + ",".join(
            f"{k}=w{'f' if w is None else w}a{'f' if a is None else a}"
            for k, (w, a) in bits.items()
        )
        return cls(
            label,
            {k: w for k, (w, _) in bits.items()},
            {k: a for k, (_, a) in bits.items()},
            granularity,
            calibration,
        )

    def bits_per_layer(self) -> dict[str, tuple[Bits, Bits]]:
        """layer -> (weight bits, activation bits), None for float."""

        def of(value: Bits | Mapping[str, Bits], layer: str) -> Bits:
            if isinstance(value, Mapping):
                b = value.get(layer)
            else:
                b = value
            return None if b is None else int(b)

        return {k: (of(self.weight_bits, k), of(self.act_bits, k)) for k in LAYER_NAMES}


FLOAT = QuantConfig("float")


def parse(text: str) -> QuantConfig:
    """``float``, ``w8a8``, ``w4a8``, ``wfa4`` (f = float), optionally ``-tensor``/``-channel``
    and ``-max``/``-mse`` suffixes: ``w4a8-tensor-max``."""
    parts = text.strip().lower().split("-")
    if parts[0] == "float":
        return FLOAT
    head = parts[0]
    if not (head.startswith("w") and "a" in head):
        raise ValueError(f"precision {text!r}: expected like w8a8, w4a8-tensor, float")
    w_text, a_text = head[1:].split("a", 1)
    granularity, calibration = "channel", "mse"
    for extra in parts[1:]:
        if extra in GRANULARITIES:
            granularity = extra
        elif extra in CALIBRATIONS:
            calibration = extra
        else:
            raise ValueError(f"precision {text!r}: unknown suffix {extra!r}")

    def width(t: str) -> Bits:
        return None if t == "f" else int(t)

    return QuantConfig.uniform(width(w_text), width(a_text), granularity, calibration)


# -- the integers -------------------------------------------------------------------------


def signed_max(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def quantize_values(x: np.ndarray, scale: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """round-half-to-even(x / scale) clipped to [lo, hi] (QuantizeLinear's rounding)."""
    return np.clip(np.round(x / scale), lo, hi)


def _best_clip(values: np.ndarray, peak: np.ndarray, lo: int, hi: int, method: str) -> np.ndarray:
    """Clipping magnitude per row of ``values`` (rows: channels, or one row for a tensor)."""
    peak = np.where(peak > 0, peak, 1.0)
    if method == "max":
        return peak
    qmax = max(abs(lo), hi)
    best, best_err = peak, np.full(peak.shape, np.inf)
    for r in _MSE_RATIOS:
        clip = peak * r
        scale = (clip / qmax)[:, None]
        err = ((quantize_values(values, scale, lo, hi) * scale - values) ** 2).sum(axis=1)
        better = err < best_err
        best = np.where(better, clip, best)
        best_err = np.where(better, err, best_err)
    return best


INT32_MAX = 2**31 - 1


def weight_quant(
    w: np.ndarray,
    bits: int,
    granularity: str,
    calibration: str,
    min_scale: np.ndarray | float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(integer weights as int8, scale: a scalar or one per output channel), float32.

    ``min_scale`` (per output channel, or one value) is a floor on the scale: a channel
    whose weights are all but zero would otherwise get a scale so small that its int32
    bias (scale ``s_w * s_a``) overflows; integer inference needs the bias to fit.
    """
    qmax = signed_max(bits)
    rows = w.reshape(w.shape[0], -1) if granularity == "channel" else w.reshape(1, -1)
    clip = _best_clip(rows, np.abs(rows).max(axis=1), -qmax, qmax, calibration)
    floor = np.broadcast_to(np.asarray(min_scale, np.float64), (w.shape[0],))
    floor = floor if granularity == "channel" else floor.max(keepdims=True)
    scale = np.maximum(clip / qmax, floor).astype(np.float32)
    shaped = scale.reshape((-1,) + (1,) * (w.ndim - 1)) if granularity == "channel" else scale[0]
    q = quantize_values(w, shaped, -qmax, qmax).astype(np.int8)
    return q, (scale if granularity == "channel" else np.float32(scale[0]))


def act_range(values: np.ndarray, bits: int) -> tuple[int, int]:
    if values.min() >= 0:
        return 0, 2**bits - 1
    return -signed_max(bits), signed_max(bits)


def act_scale(values: np.ndarray, bits: int, calibration: str) -> np.float32:
    lo, hi = act_range(values, bits)
    flat = values.reshape(1, -1)
    if flat.shape[1] > 200_000:  # the clip search on an evenly spaced sample
        flat = flat[:, :: flat.shape[1] // 200_000 + 1]
    clip = _best_clip(flat, np.abs(values).max(keepdims=True).reshape(1), lo, hi, calibration)
    return np.float32(clip[0] / max(abs(lo), hi))


# -- the ONNX graph -----------------------------------------------------------------------


@dataclass
class _Graph:
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)

    def init(self, name: str, array: np.ndarray, dtype: int | None = None) -> str:
        if dtype is None:
            self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        else:  # int4/uint4 and friends: onnx.helper packs them
            a = np.asarray(array)
            self.inits.append(helper.make_tensor(name, dtype, list(a.shape), a.flatten().tolist()))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output


@dataclass(frozen=True)
class LayerQuant:
    """What one layer's quantisation resolved to (kept for reports and tests)."""

    weight_bits: Bits
    act_bits: Bits
    weight_int: np.ndarray | None = None
    weight_scale: np.ndarray | None = None
    act_scale: np.float32 | None = None
    act_lo: int = 0
    act_hi: int = 0


def resolve(
    weights: Mapping[str, np.ndarray],
    activations: Mapping[str, np.ndarray],
    config: QuantConfig,
    memo: dict | None = None,
) -> dict[str, LayerQuant]:
    """Scales and integers for each layer, from the float weights and the calibration
    activations (``activations[layer]``: the float tensor the layer reads). ``memo``: a dict
    reused across calls with the same weights and activations (a layer's result depends
    only on its own widths, granularity and calibration)."""
    out = {}
    for layer, (wb, ab) in config.bits_per_layer().items():
        key = (layer, wb, ab, config.granularity, config.calibration)
        if memo is not None and key in memo:
            out[layer] = memo[key]
            continue
        q = scale = a_scale = None
        lo = hi = 0
        if ab is not None:
            values = activations[layer]
            lo, hi = act_range(values, ab)
            a_scale = act_scale(values, ab, config.calibration)
        if wb is not None:
            # with a quantised input the bias is int32 at scale s_w * s_a: keep it in range
            bias = np.abs(weights[f"{layer}.bias"]).astype(np.float64)
            floor = bias / (float(a_scale) * (INT32_MAX - 1)) if a_scale is not None else 0.0
            q, scale = weight_quant(
                weights[f"{layer}.weight"], wb, config.granularity, config.calibration, floor
            )
        out[layer] = LayerQuant(wb, ab, q, scale, a_scale, lo, hi)
        if memo is not None:
            memo[key] = out[layer]
    return out


def build_model(
    weights: Mapping[str, np.ndarray],
    quant: Mapping[str, LayerQuant] | None = None,
    *,
    batch: int | str = "N",
    native_int4: bool = False,
    extra_outputs: bool = False,
) -> onnx.ModelProto:
    """The digits CNN as ONNX: float when ``quant`` is None, else with QDQ nodes.

    Node names: the Conv/Gemm nodes are named after their layer (``conv1`` .. ``fc2``), which
    is the name Joule's schedule reports. ``extra_outputs`` also exposes each layer's float
    input (``<layer>.in``) as a graph output, for calibration.
    """
    quant = quant or {}
    g = _Graph()
    x = "image"
    int4 = False
    taps = []
    for layer, kind, cin, _ in LAYERS:
        lq = quant.get(layer, LayerQuant(None, None))
        if extra_outputs:
            tap = g.node("Identity", [x], f"{layer}.in", f"{layer}/tap")
            taps.append((tap, [batch, cin, 8, 8] if kind == "Conv" else [batch, cin]))
        if lq.act_bits is not None:
            x, used4 = _qdq_activation(g, x, layer, lq, native_int4)
            int4 |= used4
        w = f"{layer}.weight"
        b = f"{layer}.bias"
        if lq.weight_bits is not None:
            used4 = native_int4 and lq.weight_bits <= 4
            int4 |= used4
            g.init(f"{w}_q", lq.weight_int, TensorProto.INT4 if used4 else None)
            g.init(f"{w}_scale", np.asarray(lq.weight_scale, np.float32))
            axis = {"axis": 0} if np.ndim(lq.weight_scale) else {}
            w = g.node("DequantizeLinear", [f"{w}_q", f"{w}_scale"], w, f"{layer}/w_dq", **axis)
            if lq.act_bits is not None:
                bias_scale = (np.asarray(lq.weight_scale) * lq.act_scale).astype(np.float32)
                bias_scale = np.broadcast_to(bias_scale, weights[b].shape).copy()
                g.init(f"{b}_q", np.round(weights[b] / bias_scale).astype(np.int32))
                g.init(f"{b}_scale", bias_scale)
                b = g.node("DequantizeLinear", [f"{b}_q", f"{b}_scale"], b, f"{layer}/b_dq", axis=0)
            else:
                g.init(b, weights[b])
        else:
            g.init(w, weights[w])
            g.init(b, weights[b])
        if kind == "Conv":
            y = g.node("Conv", [x, w, b], f"{layer}.out", layer, pads=[1, 1, 1, 1])
        else:
            y = g.node("Gemm", [x, w, b], f"{layer}.out", layer, transB=1)
        if layer == "conv2":
            y = g.node("Relu", [y], "conv2.relu", "conv2/relu")
            y = g.node("MaxPool", [y], "pool", "pool", kernel_shape=[2, 2], strides=[2, 2])
            y = g.node("Flatten", [y], "flat", "flatten", axis=1)
        elif layer != LAYER_NAMES[-1]:
            y = g.node("Relu", [y], f"{layer}.relu", f"{layer}/relu")
        x = y
    outputs = [helper.make_tensor_value_info(x, TensorProto.FLOAT, [batch, 10])]
    outputs += [helper.make_tensor_value_info(t, TensorProto.FLOAT, s) for t, s in taps]
    graph = helper.make_graph(
        g.nodes,
        "digits_cnn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, 8, 8])],
        outputs,
        g.inits,
    )
    opset, ir = (OPSET_INT4, IR_VERSION_INT4) if int4 else (OPSET, IR_VERSION)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="joule.accuracy"
    )
    model.ir_version = ir
    onnx.checker.check_model(model)
    return model


def _qdq_activation(
    g: _Graph, x: str, layer: str, lq: LayerQuant, native_int4: bool
) -> tuple[str, bool]:
    unsigned = lq.act_lo == 0
    use4 = native_int4 and lq.act_bits == 4
    if use4:
        dtype = TensorProto.UINT4 if unsigned else TensorProto.INT4
    else:
        dtype = TensorProto.UINT8 if unsigned else TensorProto.INT8
    scale = g.init(f"{layer}.in_scale", np.asarray(lq.act_scale, np.float32))
    zero = g.init(f"{layer}.in_zero", np.zeros((), np.uint8 if unsigned else np.int8), dtype)
    q = g.node("QuantizeLinear", [x, scale, zero], f"{layer}.in_q", f"{layer}/a_q")
    carrier = (0, 15) if use4 else ((0, 255) if unsigned else (-128, 127))
    if not use4 and (lq.act_lo, lq.act_hi) != carrier:
        np_type = np.uint8 if unsigned else np.int8
        lo = g.init(f"{layer}.in_lo", np.asarray(lq.act_lo, np_type))
        hi = g.init(f"{layer}.in_hi", np.asarray(lq.act_hi, np_type))
        q = g.node("Clip", [q, lo, hi], f"{layer}.in_qc", f"{layer}/a_clip")
    elif use4 and not unsigned and lq.act_lo != -8:
        raise ValueError("native int4 holds a signed 4-bit activation only with Clip")
    y = g.node("DequantizeLinear", [q, scale, zero], f"{layer}.in_dq", f"{layer}/a_dq")
    return y, use4
