"""``joule bench SUITE --out DIR``: run a benchmark suite and write SUITE.json, SUITE.md, PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from joule.defaults import DEFAULT_WORKERS

SUITE_NAMES = ("dataflows", "isoarea", "networks", "solver", "peers", "precision")


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", choices=SUITE_NAMES, help="which suite to run")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=None,
        help="per-layer CP-SAT budget in deterministic seconds (default: the suite's own)",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="layers solved in parallel"
    )
    parser.add_argument("--layers", type=_names, default=(), help="comma-separated subset")
    parser.add_argument("--dataflows", type=_names, default=(), help="comma-separated subset")
    parser.add_argument("--networks", type=_names, default=(), help="comma-separated subset")
    parser.add_argument("--targets", type=_names, default=(), help="comma-separated subset")
    parser.add_argument(
        "--samples", type=int, default=None, help="random-mapper samples (solver suite)"
    )


def run(args: argparse.Namespace) -> int:
    from joule.bench import BenchConfig, run_suite
    from joule.option_checks import check_options

    check_options(
        "joule bench",
        flags=True,
        time_limit=args.time_limit,
        workers=args.workers,
        samples=args.samples,
    )
    config = BenchConfig(
        time_limit_s=args.time_limit,
        workers=args.workers,
        layers=args.layers,
        dataflows=args.dataflows,
        networks=args.networks,
        targets=args.targets,
        samples=args.samples,
    )
    out = Path(args.out)
    run_suite(args.suite, out, config)
    print(f"wrote {out / (args.suite + '.json')} and {out / (args.suite + '.md')}")
    return 0
