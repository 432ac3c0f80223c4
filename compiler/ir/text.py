"""The loop-nest IR's text form: what ``joule lower`` prints and what tests start from.

The printer and the parser are exact inverses: ``parse(print(x)) == x``.

    loopnest @conv1 (op "Conv", onnx "/conv1/Conv", relax "relax.nn.conv2d") {
      dims N=1 K=64 C=3 P=112 Q=112 R=7 S=7
      reduce C R S
      // O[N, K, P, Q] += I[N, C, 2*P + R - 3, 2*Q + S - 3] * W[K, C, R, S]   (118013952 MACs)
      output "O" bits=32 shape=[1, 64, 112, 112] at [N, K, P, Q]
      input "I" bits=32 shape=[1, 3, 224, 224] at [N, C, 2*P + R - 3, 2*Q + S - 3]
      weight "W" bits=32 shape=[64, 3, 7, 7] at [K, C, R, S]
      attr "strides" "2,2"
    }

Names are JSON strings, so any ONNX name (with ``/``, ``.``, ``::``) survives.
Lines starting with ``//`` are comments.
"""

from __future__ import annotations

import json
import re

from joule.errors import IRParseError
from joule.ir.affine import AffineExpr
from joule.ir.loopnest import ROLES, LoopNest, Tensor

STRING = r'"(?:[^"\\]|\\.)*"'  # a JSON string
NAME = rf"{STRING}|[A-Za-z_][\w.]*"  # what quote_name prints
_HEADER = re.compile(
    rf"^loopnest @({NAME}) \(op ({STRING}), onnx ({STRING}), "
    rf"relax ({STRING})\) \{{$"
)
_TENSOR = re.compile(
    rf"^(input|weight|output) ({STRING}) bits=(\d+) shape=\[([\d, ]*)\] at \[(.*)\]$"
)
_ATTR = re.compile(rf"^attr ({STRING}) ({STRING})$")
_IDENT = re.compile(r"[A-Za-z_][\w.]*")


def quote_name(text: str) -> str:
    """An identifier as it is, anything else as a JSON string."""
    return text if _IDENT.fullmatch(text) else json.dumps(text)


def unquote_name(text: str) -> str:
    return json.loads(text) if text.startswith('"') else text


def numbered_lines(text: str) -> list[tuple[int, str]]:
    """(line number, stripped line) of every line that is neither blank nor a comment."""
    lines = [(i + 1, ln.strip()) for i, ln in enumerate(text.splitlines())]
    return [(i, ln) for i, ln in lines if ln and not ln.startswith("//")]


def match_line(
    pattern: re.Pattern[str], numbered: tuple[int, str], what: str, hint: str
) -> re.Match[str]:
    """``pattern`` matched against one numbered line, or an IRParseError naming the line."""
    lineno, line = numbered
    match = pattern.match(line)
    if not match:
        raise IRParseError(f"cannot read {what} {line!r}", where=f"line {lineno}", hint=hint)
    return match


def block_end(lines: list[tuple[int, str]], start: int, what: str) -> int:
    """Index of the line ``}`` that closes the block opened at ``lines[start]``."""
    end = next((k for k in range(start, len(lines)) if lines[k][1] == "}"), None)
    if end is None:
        raise IRParseError(
            f"{what} is not closed",
            where=f"line {lines[start][0]}",
            hint=f"end each {what} with a line holding only '}}'",
        )
    return end


def _access(tensor: Tensor, label: str) -> str:
    return f"{label}[{', '.join(str(p) for p in tensor.projection)}]"


def print_loopnest(nest: LoopNest) -> str:
    """Render one loop nest in the text form."""
    out = nest.output
    operands = nest.operands
    labels = {"output": "O", "input": "I", "weight": "W"}
    rhs = " * ".join(_access(t, labels[t.role]) for t in operands)
    lines = [
        f"loopnest @{quote_name(nest.name)} (op {json.dumps(nest.op)}, "
        f"onnx {json.dumps(nest.onnx_node)}, relax {json.dumps(nest.relax_op)}) {{",
        "  dims " + " ".join(f"{d}={e}" for d, e in nest.dims),
        "  reduce " + " ".join(d for d in nest.dim_names if d in nest.reduction),
        f"  // {_access(out, 'O')} += {rhs}   ({nest.macs} MACs)",
    ]
    for t in nest.tensors:
        lines.append(
            f"  {t.role} {json.dumps(t.name)} bits={t.bits} "
            f"shape=[{', '.join(str(s) for s in t.shape)}] "
            f"at [{', '.join(str(p) for p in t.projection)}]"
        )
    for key, value in nest.attrs:
        lines.append(f"  attr {json.dumps(key)} {json.dumps(value)}")
    lines.append("}")
    return "\n".join(lines)


def print_loopnests(nests: list[LoopNest]) -> str:
    return "\n\n".join(print_loopnest(n) for n in nests) + "\n"


def parse_loopnests(text: str) -> list[LoopNest]:
    """Parse every loop nest in ``text``; errors name the line."""
    lines = numbered_lines(text)
    nests: list[LoopNest] = []
    pos = 0
    while pos < len(lines):
        end = block_end(lines, pos, "loopnest")
        nests.append(parse_loopnest_lines(lines[pos : end + 1]))
        pos = end + 1
    return nests


def parse_loopnest(text: str) -> LoopNest:
    nests = parse_loopnests(text)
    if len(nests) != 1:
        raise IRParseError(f"expected one loop nest, found {len(nests)}")
    return nests[0]


def parse_loopnest_lines(lines: list[tuple[int, str]]) -> LoopNest:
    """One loopnest block, header to closing brace, as :func:`numbered_lines` gives it."""
    match = match_line(
        _HEADER,
        lines[0],
        "loop nest header",
        'write: loopnest @NAME (op "Conv", onnx "node", relax "relax.nn.conv2d") {',
    )
    name, op, onnx_node, relax_op = (unquote_name(g) for g in match.groups())
    dims: list[tuple[str, int]] = []
    reduction: list[str] = []
    tensors: list[Tensor] = []
    attrs: list[tuple[str, str]] = []
    for lineno, line in lines[1:-1]:
        keyword = line.split(" ", 1)[0]
        try:
            if keyword == "dims":
                for item in line.split()[1:]:
                    d, e = item.split("=")
                    dims.append((d, int(e)))
            elif keyword == "reduce":
                reduction.extend(line.split()[1:])
            elif keyword in ROLES:
                tensors.append(_parse_tensor(line))
            elif keyword == "attr":
                m = _ATTR.match(line)
                if not m:
                    raise ValueError(line)
                attrs.append((json.loads(m.group(1)), json.loads(m.group(2))))
            else:
                raise ValueError(line)
        except (ValueError, IRParseError) as exc:
            raise IRParseError(
                f"cannot read {line!r} ({exc})",
                where=f"line {lineno}",
                hint="expected dims, reduce, input/weight/output or attr",
            ) from None
    return LoopNest(
        name=name,
        dims=tuple(dims),
        reduction=frozenset(reduction),
        tensors=tuple(tensors),
        op=op,
        onnx_node=onnx_node,
        relax_op=relax_op,
        attrs=tuple(attrs),
    )


def _parse_tensor(line: str) -> Tensor:
    m = _TENSOR.match(line)
    if not m:
        raise ValueError("bad tensor line")
    role, name, bits, shape, proj = m.groups()
    return Tensor(
        name=json.loads(name),
        role=role,  # type: ignore[arg-type]
        bits=int(bits),
        projection=tuple(AffineExpr.parse(p) for p in proj.split(",")) if proj.strip() else (),
        shape=tuple(int(s) for s in shape.split(",")) if shape.strip() else (),
    )
