"""The ``joule`` command: a thin layer over the Python API.

Subcommands live in their own modules (``compiler/cli/<name>.py``) with
``add_arguments(parser)`` and ``run(args) -> int``; they are imported only when
used, so ``joule targets`` does not pay for importing TVM.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from joule.errors import JouleError

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "lower": ("joule.cli.lower", "import an ONNX model and print its loop nests"),
    "targets": ("joule.cli.targets", "list the bundled accelerator targets"),
    "evaluate": ("joule.cli.evaluate", "score one mapping of one layer on a target"),
    "compile": ("joule.cli.compile", "map every layer of a model energy-optimally"),
    "bench": ("joule.cli.bench", "run a benchmark suite: dataflows, networks, solver, peers"),
    "sweep": ("joule.cli.sweep", "map networks on every design point of a target template"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="joule", description="Energy-minimal dataflow mappings for DNN accelerators."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser = build_parser()
        if argv and not argv[0].startswith("-"):
            parser.print_usage(sys.stderr)
            print(f"joule: error: unknown command {argv[0]!r}", file=sys.stderr)
            return 2
        parser.parse_args(argv)
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"joule {name}", description=SUBCOMMANDS[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        status = int(module.run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, not in the interpreter's exit
        return status
    except JouleError as err:
        print(err.message(), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("joule: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`joule lower resnet50 | head`): stop quietly, as
        # `cat` does. Point stdout at /dev/null so the exit-time flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a process killed by the pipe


if __name__ == "__main__":
    sys.exit(main())
