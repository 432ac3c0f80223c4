"""The text form of a :class:`~joule.pipeline.MappingModule`: what ``--print-after`` prints.

The whole module state after any pass prints as text that parses back to it:
``parse_module(print_module(m), m.network, m.target) == m``. The network (the
loop nests as lowered) and the target are the context the text is read
against; the header names both and the parser checks them. Each layer is its
loop nest as the passes rewrote it (:mod:`joule.ir.text`), then its notes, what
``dataflow`` attached (``mapspace``) and what ``tile`` chose (``mapping`` and
``solver``)::

    module "tiny" target "eyeriss" {
      loopnest @"/fc/Gemm" (op "Gemm", onnx "/fc/Gemm", relax "relax.matmul") {
        dims N=10 K=8
        ...
      }
      note "dataflow rs does not apply; mapped as free"
      mapspace dataflow free {
        level DRAM: temporal {N, K} spatial_x {N, K} spatial_y {N, K}
        level shared_glb: temporal {N, K} spatial_x {N} spatial_y {N, K}
        level ifmap_spad: temporal {} spatial_x {N, K} spatial_y {N, K} order (K, N)
        level weights_spad: temporal {K} spatial_x {N, K} spatial_y {N, K} order (K, N)
        level psum_spad: temporal {N} spatial_x {N, K} spatial_y {N, K} order (N, K)
      }
      mapping {
        level DRAM:
        level shared_glb: for N in 2, parallel-for K in 8 on Y
        level ifmap_spad:
        level weights_spad:
        level psum_spad: for N in 5
      }
      solver mapper="random" status="FEASIBLE" objective=6990.389654999999 ... proof_work=0
      // cost model: 6990.39 pJ, 10 cycles
    }

``mapspace`` is a :class:`SpaceConstraints`: for every target level, outermost
first, the dims that may loop there (``temporal``) or unroll across the fan-out
below it (``spatial_x``, ``spatial_y``), and the level's fixed loop order
(``order``, outermost first) when the target fixes one. ``mapping`` is a
:class:`~joule.mapping.Mapping`: per level its temporal loops ``for D in F``
(outermost first), then its spatial loops ``parallel-for D in F on X|Y``.
``solver`` holds every field of the :class:`SolverReport` as JSON (floats
exactly). The cost is the cost model's, recomputed when parsing, so it is only
a comment. Names that are not identifiers are JSON strings; lines starting
with ``//`` are comments.
"""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from collections.abc import Sequence

from joule.cost import evaluate
from joule.errors import IRParseError
from joule.ir.loopnest import LoopNest
from joule.ir.network import Network
from joule.ir.text import (
    NAME,
    STRING,
    block_end,
    match_line,
    numbered_lines,
    parse_loopnest_lines,
    print_loopnest,
    quote_name,
    unquote_name,
)
from joule.mapping import LevelLoops, Loop, Mapping
from joule.passes.mapper.mapspace.space import SpaceConstraints
from joule.passes.mapper.outcome import SearchResult, SolverReport
from joule.pipeline import LayerState, MappingModule
from joule.targets.spec import Target

_Lines = list[tuple[int, str]]

_DIM = re.compile(r"[A-Za-z_]\w*")
_MODULE = re.compile(rf"^module ({STRING}) target ({STRING}) \{{$")
_MAPSPACE = re.compile(rf"^mapspace dataflow ({NAME}) \{{$")
_SPACE_LEVEL = re.compile(
    rf"^level ({NAME}): temporal \{{([^{{}}]*)\}} spatial_x \{{([^{{}}]*)\}} "
    r"spatial_y \{([^{}]*)\}(?: order \(([^()]*)\))?$"
)
_MAP_LEVEL = re.compile(rf"^level ({NAME}):(.*)$")
_TEMPORAL = re.compile(r"^for ([A-Za-z_]\w*) in (\d+)$")
_SPATIAL = re.compile(r"^parallel-for ([A-Za-z_]\w*) in (\d+) on ([XY])$")
_NOTE = re.compile(rf"^note ({STRING})$")
_PAIR = re.compile(rf"(\w+)=({STRING}|\S+)")
# field -> type name ("str", "float", "int"): annotations are strings under postponed evaluation
_REPORT_TYPES = {
    f.name: getattr(f.type, "__name__", f.type) for f in dataclasses.fields(SolverReport)
}


def print_mapspace(
    constraints: SpaceConstraints, levels: Sequence[str], dims: Sequence[str]
) -> str:
    """``constraints`` with ``levels`` (the target's level names) and sets in ``dims`` order."""
    rank = {d: k for k, d in enumerate(dims)}

    def dim_set(names: frozenset[str]) -> str:
        return "{" + ", ".join(sorted(names, key=lambda d: (rank.get(d, len(rank)), d))) + "}"

    c = constraints
    lines = [f"mapspace dataflow {quote_name(c.dataflow)} {{"]
    for name, temporal, xs, ys, order in zip(
        levels, c.temporal, c.spatial_x, c.spatial_y, c.permutation, strict=True
    ):
        line = (
            f"  level {quote_name(name)}: temporal {dim_set(temporal)} "
            f"spatial_x {dim_set(xs)} spatial_y {dim_set(ys)}"
        )
        if order is not None:
            line += f" order ({', '.join(order)})"
        lines.append(line)
    lines.append("}")
    return "\n".join(lines)


def parse_mapspace(text: str, levels: Sequence[str]) -> SpaceConstraints:
    """The inverse of :func:`print_mapspace`; the level names must be ``levels``."""
    return _mapspace(numbered_lines(text), levels)


def print_mapping(mapping: Mapping) -> str:
    """One line per level: its temporal loops, then its spatial loops."""
    lines = ["mapping {"]
    for lvl in mapping.levels:
        loops = [f"for {lp.dim} in {lp.factor}" for lp in lvl.temporal]
        loops += [f"parallel-for {lp.dim} in {lp.factor} on {lp.axis}" for lp in lvl.spatial]
        lines.append(
            f"  level {quote_name(lvl.level)}:" + (" " if loops else "") + ", ".join(loops)
        )
    lines.append("}")
    return "\n".join(lines)


def parse_mapping(text: str) -> Mapping:
    """The inverse of :func:`print_mapping`."""
    return _mapping(numbered_lines(text))


def print_module(module: MappingModule) -> str:
    """The module: a header naming model and target, then every layer, blank-line apart."""
    levels = [lvl.name for lvl in module.target.levels]
    parts = []
    for layer in module.layers:
        lines = [print_loopnest(layer.nest)]
        lines += [f"note {json.dumps(note)}" for note in layer.notes]
        if layer.constraints is not None:
            lines.append(print_mapspace(layer.constraints, levels, layer.nest.dim_names))
        if layer.result is not None:
            result: SearchResult = layer.result  # type: ignore[assignment]
            lines.append(print_mapping(result.mapping))
            lines.append(_solver_line(result.report))
            lines.append(
                f"// cost model: {result.cost.energy_pj:.6g} pJ, {result.cost.cycles} cycles"
            )
        parts.append("\n".join(lines))
    head = f"module {json.dumps(module.network.model)} target {json.dumps(module.target.name)} {{"
    body = textwrap.indent("\n\n".join(parts), "  ")
    return f"{head}\n{body}\n}}\n"


def parse_module(text: str, network: Network, target: Target) -> MappingModule:
    """The module ``text`` shows, read against the network and target it was printed for."""
    lines = numbered_lines(text)
    if not lines:
        raise IRParseError("no module in the text", hint='start with: module "MODEL" target "T" {')
    lineno = lines[0][0]
    match = match_line(_MODULE, lines[0], "module header", 'write: module "MODEL" target "T" {')
    model, target_name = (json.loads(g) for g in match.groups())
    for what, got, want in (("model", model, network.model), ("target", target_name, target.name)):
        if got != want:
            raise IRParseError(
                f"the text is a module of {what} {got!r}, read against {want!r}",
                where=f"line {lineno}",
                hint=f"parse it with the {what} it was printed for",
            )
    if len(lines) < 2 or lines[-1][1] != "}":
        raise IRParseError(
            "module is not closed",
            where=f"line {lineno}",
            hint="end the module with a line holding only '}'",
        )
    layers = _layers(lines[1:-1], [lvl.name for lvl in target.levels])
    if [p.nest.name for p in layers] != [n.name for n in network.loopnests]:
        raise IRParseError(
            f"the text has layers {[p.nest.name for p in layers]}, the network "
            f"{[n.name for n in network.loopnests]}",
            hint="every layer of the network, in its order",
        )
    states = []
    for original, p in zip(network.loopnests, layers, strict=True):
        result = None
        if p.mapping is not None:
            cost = evaluate(p.nest, target, p.mapping)  # validates the mapping
            result = SearchResult(p.mapping, cost, p.report)  # type: ignore[arg-type]
        states.append(LayerState(original, p.nest, p.constraints, result, tuple(p.notes)))
    return MappingModule(network, target, states)


_LAYER_FIELDS = {"mapspace": "constraints", "mapping": "mapping", "solver": "report"}


@dataclasses.dataclass
class _Layer:
    nest: LoopNest
    notes: list[str] = dataclasses.field(default_factory=list)
    constraints: SpaceConstraints | None = None
    mapping: Mapping | None = None
    report: SolverReport | None = None


def _layers(lines: _Lines, levels: Sequence[str]) -> list[_Layer]:
    layers: list[_Layer] = []
    pos = 0
    while pos < len(lines):
        lineno, line = lines[pos]
        keyword = line.split(" ", 1)[0]
        end = block_end(lines, pos, keyword) if line.endswith("{") else pos
        block, pos = lines[pos : end + 1], end + 1
        if keyword == "loopnest":
            layers.append(_Layer(parse_loopnest_lines(block)))
            continue
        if not layers or keyword not in ("note", *_LAYER_FIELDS):
            raise IRParseError(
                f"cannot read {line!r}",
                where=f"line {lineno}",
                hint="a module holds loopnest blocks, each followed by its note lines, "
                "mapspace block, mapping block and solver line",
            )
        layer = layers[-1]
        if keyword == "note":
            note = match_line(_NOTE, (lineno, line), "note", 'write: note "TEXT"')
            layer.notes.append(json.loads(note.group(1)))
            continue
        field = _LAYER_FIELDS[keyword]
        if getattr(layer, field) is not None:
            raise IRParseError(
                f"layer @{layer.nest.name} has a second {keyword}",
                where=f"line {lineno}",
                hint=f"give each layer at most one {keyword}",
            )
        if keyword == "mapspace":
            setattr(layer, field, _mapspace(block, levels))
        elif keyword == "mapping":
            setattr(layer, field, _mapping(block))
        else:
            setattr(layer, field, _report(lineno, line))
    for layer in layers:
        if (layer.mapping is None) != (layer.report is None):
            raise IRParseError(
                f"layer @{layer.nest.name} has a mapping without a solver line or the reverse",
                hint="a mapping block is followed by the solver line that found it",
            )
    return layers


def _mapspace(lines: _Lines, levels: Sequence[str]) -> SpaceConstraints:
    match = match_line(_MAPSPACE, lines[0], "mapspace header", "write: mapspace dataflow NAME {")
    rows = []
    for lineno, line in lines[1:-1]:
        row = match_line(
            _SPACE_LEVEL,
            (lineno, line),
            "mapspace level",
            "write: level NAME: temporal {D, ...} spatial_x {...} spatial_y {...} [order (D, ...)]",
        )
        name, temporal, xs, ys, order = row.groups()
        dims = [_dims(lineno, text) for text in (temporal, xs, ys)]
        fixed = None if order is None else tuple(_dims(lineno, order))
        rows.append((unquote_name(name), *(frozenset(d) for d in dims), fixed))
    names = [row[0] for row in rows]
    if names != list(levels):
        raise IRParseError(
            f"the mapspace has levels {names}, the target {list(levels)}",
            where=f"line {lines[0][0]}",
            hint="give one line per target level, outermost first",
        )
    return SpaceConstraints(
        temporal=tuple(row[1] for row in rows),
        spatial_x=tuple(row[2] for row in rows),
        spatial_y=tuple(row[3] for row in rows),
        permutation=tuple(row[4] for row in rows),
        dataflow=unquote_name(match.group(1)),
    )


def _dims(lineno: int, text: str) -> list[str]:
    dims = [d.strip() for d in text.split(",")] if text.strip() else []
    bad = [d for d in dims if not _DIM.fullmatch(d)]
    if bad:
        raise IRParseError(
            f"{bad[0]!r} is not a dim name", where=f"line {lineno}", hint="write e.g. {K, C}"
        )
    return dims


def _mapping(lines: _Lines) -> Mapping:
    lineno, head = lines[0]
    if head != "mapping {":
        raise IRParseError(
            f"cannot read mapping header {head!r}", where=f"line {lineno}", hint="write: mapping {"
        )
    levels = []
    for lineno, line in lines[1:-1]:
        match = match_line(
            _MAP_LEVEL,
            (lineno, line),
            "mapping level",
            "write: level NAME: for D in F, ..., parallel-for D in F on X|Y, ...",
        )
        temporal: list[Loop] = []
        spatial: list[Loop] = []
        body = match.group(2).strip()
        for item in body.split(",") if body else []:
            loop = item.strip()
            if t := _TEMPORAL.match(loop):
                if spatial:
                    raise IRParseError(
                        f"temporal loop {loop!r} after a spatial loop",
                        where=f"line {lineno}",
                        hint="list a level's temporal loops first: they run outside its "
                        "spatial ones",
                    )
                temporal.append(Loop(t.group(1), int(t.group(2))))
            elif s := _SPATIAL.match(loop):
                spatial.append(Loop(s.group(1), int(s.group(2)), s.group(3)))  # type: ignore[arg-type]
            else:
                raise IRParseError(
                    f"cannot read loop {loop!r}",
                    where=f"line {lineno}",
                    hint="write: for D in F, or parallel-for D in F on X (or Y)",
                )
        levels.append(LevelLoops(unquote_name(match.group(1)), tuple(temporal), tuple(spatial)))
    return Mapping(tuple(levels))


def _solver_line(report: SolverReport) -> str:
    pairs = (f"{name}={json.dumps(getattr(report, name))}" for name in _REPORT_TYPES)
    return "solver " + " ".join(pairs)


def _report(lineno: int, line: str) -> SolverReport:
    body = line.removeprefix("solver ")
    pairs = _PAIR.findall(body)
    hint = "write: solver " + " ".join(f"{name}=VALUE" for name in _REPORT_TYPES)
    if " ".join(f"{k}={v}" for k, v in pairs) != body or [k for k, _ in pairs] != list(
        _REPORT_TYPES
    ):
        raise IRParseError(f"cannot read solver line {line!r}", where=f"line {lineno}", hint=hint)
    values = {}
    for key, text in pairs:
        kind = _REPORT_TYPES[key]
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if kind == "float" and type(value) is int:
            value = float(value)
        if type(value).__name__ != kind:
            raise IRParseError(
                f"solver {key}={text} is not a {kind}", where=f"line {lineno}", hint=hint
            )
        values[key] = value
    return SolverReport(**values)
