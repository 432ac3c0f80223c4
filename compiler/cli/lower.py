"""``joule lower MODEL``: import a model and print its loop nests (text IR or JSON)."""

from __future__ import annotations

import argparse
import json

from joule.errors import ModelError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="an .onnx file or a bundled model name")
    parser.add_argument(
        "--batch", type=int, default=None, metavar="N", help="bind a symbolic first input dim"
    )
    parser.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a symbolic input dimension by its ONNX name (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON record instead")


def parse_dims(items: list[str]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise ModelError(
                f"cannot read --dim {item!r}",
                where=f"--dim {item}",
                hint="write --dim NAME=VALUE with an integer VALUE, e.g. --dim seq=128",
            )
        dims[name.strip()] = int(value)
    return dims


def run(args: argparse.Namespace) -> int:
    from joule.ir import print_loopnests
    from joule.lower import lower_model

    network = lower_model(args.model, batch=args.batch, dims=parse_dims(args.dim))
    if args.json:
        print(json.dumps(network.to_dict(), indent=2))
        return 0
    if network.loopnests:
        print(print_loopnests(network.loopnests), end="")
    print(
        f"// model {network.model}: {len(network.loopnests)} loop nests, "
        f"total MACs {network.total_macs:,}"
    )
    print(f"// {len(network.unmapped_ops)} unmapped ops (not MACs; listed, not mapped):")
    for op in network.unmapped_ops:
        note = " (folded into the loop nest's projection)" if op.folded else ""
        print(f"//   {op.name}  [{op.op}]  {op.elements:,} elements{note}")
    return 0
