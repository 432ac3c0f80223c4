"""``--emit tvm``: the model's legalized Relax module scheduled with Joule's mappings, verified.

Writes ``DIR/tvm/module.py`` (TVMScript of the scheduled module,
loadable with ``tvm.script.from_source``) and, when
the model carries weights, ``DIR/tvm/params.npz`` (``main`` takes them after its
inputs, by parameter name). Each call site gets the mapping of its layer in
the schedule (sites whose layers were mapped differently get their own copy of
a shared PrimFunc). The verification record goes into ``schedule.json``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tvm
from joule.errors import JouleError
from joule.frontend import describe_module, load_onnx, read_model
from joule.frontend.dims import input_shapes
from joule.frontend.importer import SiteInfo
from joule.mapping import Mapping
from joule.passes.tvm.feeds import graph_inputs, random_feeds
from joule.passes.tvm.lift_params import lift_constants
from joule.passes.tvm.module_pass import MAPPING_ATTR, JouleSchedule
from joule.passes.tvm.verify import verify
from joule.report.files import write_atomic
from joule.schedule import Schedule
from joule.targets.spec import Target

_HEADER = """\
# TVMScript of {model}, every MAC PrimFunc scheduled by Joule for target {target}.
# Each scheduled PrimFunc has the attribute "joule.mapping" (JSON); its MAC block's
# loops are the mapping's loops, annotated "joule.level" and "joule.spatial" (X/Y).
# Load it with: mod = tvm.script.from_source(pathlib.Path("module.py").read_text())
{params}
"""


def resolve_model(source: str | Path | onnx.ModelProto) -> onnx.ModelProto:
    """A ModelProto from a path, a proto or a bundled model name (as ``lower_model`` reads it)."""
    from joule.models import BUNDLED_MODELS, bundled_model

    if isinstance(source, str) and not Path(source).exists():
        if source in BUNDLED_MODELS or not Path(source).suffix:
            return bundled_model(source)
    model, _name = read_model(source)
    return model


def site_mappings(schedule: Schedule, mod: tvm.IRModule, info: SiteInfo) -> dict[str, Mapping]:
    """Call-site var name (``site#k`` for a PrimFunc's k-th MAC block) -> its layer's mapping.

    Layers are named as the lowering names them: the ONNX node, then ``node#1``...
    for further MAC blocks of the same node, in binding order.
    """
    desc = describe_module(mod, info)
    by_layer = {layer.nest.name: layer.mapping for layer in schedule.layers}
    out: dict[str, Mapping] = {}
    counts: dict[str, int] = {}
    for b in desc.bindings:
        if b.kind != "call_tir" or b.node is None:
            continue
        site = desc.values[b.var].name
        for k, _block in enumerate(desc.funcs[b.func or ""].macs):
            n = counts.get(b.node, 0)
            counts[b.node] = n + 1
            layer = b.node if n == 0 else f"{b.node}#{n}"
            if layer in by_layer:
                out[site if k == 0 else f"{site}#{k}"] = by_layer[layer]
    return out


def emit_tvm(
    schedule: Schedule,
    model: str | Path | onnx.ModelProto,
    out_dir: str | Path,
    *,
    target: str | Path | Target,
    batch: int | None = None,
    dims: MappingABC[str, int] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Write ``out_dir/tvm/module.py`` and return the verification record."""
    proto = resolve_model(model)
    mod, info = load_onnx(proto, batch=batch, dims=dims)
    mappings = site_mappings(schedule, mod, info)
    lifted, constants = lift_constants(mod)
    scheduled = JouleSchedule(target, mappings=mappings)(lifted)
    mapped = sum(
        1
        for _gv, f in scheduled.functions_items()
        if MAPPING_ATTR in (getattr(f, "attrs", None) or {})
    )
    directory = Path(out_dir) / "tvm"
    directory.mkdir(parents=True, exist_ok=True)
    write_module(scheduled, directory, constants, model=schedule.model, target=schedule.target)
    shapes = input_shapes(proto, batch=batch, dims=dims, where=schedule.model)
    feeds = random_feeds(proto, shapes, seed=seed)
    args = [feeds[v.name] for v in graph_inputs(proto)] + [value for _, value in constants]
    record = verify(scheduled, lifted, args, proto, feeds)
    record["scheduled_primfuncs"] = mapped
    record["module"] = str(directory / "module.py")
    return record


def write_module(
    mod: tvm.IRModule,
    directory: Path,
    constants: list[tuple[str, np.ndarray]],
    *,
    model: str,
    target: str,
) -> Path:
    """module.py (+ params.npz); checks that TVM parses the file back."""
    params = ""
    if constants:
        params = (
            f"# main takes the model's {len(constants)} weights after its inputs, by "
            "parameter name: np.load('params.npz')[name].\n"
        )
        buffer = io.BytesIO()
        np.savez(buffer, **dict(constants))
        write_atomic(directory / "params.npz", buffer.getvalue())
    text = _HEADER.format(model=model, target=target, params=params) + mod.script() + "\n"
    try:
        tvm.script.from_source(text)
    except Exception as exc:  # a printer/parser mismatch in TVM: not the user's doing
        raise JouleError(
            f"TVM could not parse back the scheduled module it printed: {type(exc).__name__}",
            where=str(directory / "module.py"),
            hint="report this; the verification ran on the in-memory module",
        ) from exc
    path = directory / "module.py"
    write_atomic(path, text)
    return path
