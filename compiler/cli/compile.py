"""``joule compile MODEL --target T --out DIR``: map every layer, write the schedule and reports."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from joule.cli.lower import parse_dims
from joule.defaults import DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT_S, DEFAULT_WORKERS
from joule.option_checks import check_options
from joule.passes.dataflow import DATAFLOWS

if TYPE_CHECKING:
    from joule.cache import ResultCache


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="ONNX file or bundled model name (resnet18, transformer...)")
    parser.add_argument("--target", default="eyeriss", help="bundled target name or YAML path")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--objective", default="energy", choices=["energy", "edp", "latency"])
    parser.add_argument("--dataflow", default="free", choices=list(DATAFLOWS))
    parser.add_argument("--mapper", default="cpsat", choices=["cpsat", "exhaustive", "random"])
    parser.add_argument(
        "--factors",
        default="perfect",
        choices=["perfect", "imperfect"],
        help="imperfect: loops may leave a residual tile (improves the perfect optimum; "
        "proven where CP-SAT covers the layer or the imperfect floor is met, else a gap)",
    )
    parser.add_argument(
        "--samples", type=int, default=DEFAULT_SAMPLES, help="valid samples for --mapper random"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT_S,
        help="per-layer solver budget (deterministic units, roughly seconds)",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="layers solved in parallel"
    )
    parser.add_argument("--max-cycles", type=int, default=None, help="latency cap per layer")
    parser.add_argument(
        "--min-utilization",
        type=float,
        default=None,
        help="latency cap as a PE utilisation floor, e.g. 0.5",
    )
    parser.add_argument("--batch", type=int, default=None, help="bind a symbolic batch dim")
    parser.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a symbolic dim (repeatable)",
    )
    parser.add_argument(
        "--precision",
        default=None,
        metavar="SPEC|FILE",
        help="bits per tensor: wWaA[oO][pP] (e.g. w4a8) for every layer, or a YAML file "
        "{default: SPEC, layers: {ONNX_NODE: SPEC}}; default: the target's own widths",
    )
    parser.add_argument(
        "--emit",
        action="append",
        default=[],
        choices=["tvm", "timeloop"],
        help="also write DIR/tvm/module.py (scheduled TVM module, verified) or "
        "DIR/timeloop/<layer>/*.yaml (repeatable)",
    )
    store = parser.add_mutually_exclusive_group()
    store.add_argument(
        "--cache",
        metavar="PATH",
        default=None,
        help="result cache: an SQLite file, or a directory for results.sqlite "
        "(default: $JOULE_CACHE_DIR, $XDG_CACHE_HOME/joule or ~/.cache/joule)",
    )
    store.add_argument(
        "--no-cache", action="store_true", help="solve every layer; neither read nor write a cache"
    )
    parser.add_argument(
        "--print-after",
        action="append",
        default=[],
        metavar="PASS",
        help="print the IR after a pass: canonicalize, dataflow, tile",
    )


def run(args: argparse.Namespace) -> int:
    from joule.lower import resolve_model
    from joule.report.files import prepare_dir

    check_options(
        "joule compile",
        flags=True,
        time_limit=args.time_limit,
        workers=args.workers,
        samples=args.samples,
        max_cycles=args.max_cycles,
        min_utilization=args.min_utilization,
    )
    if args.precision is not None and "timeloop" in args.emit:
        from joule.errors import OptionError

        raise OptionError(
            "--emit timeloop cannot carry --precision: Timeloop has one data width per "
            "storage level, not per tensor (timeloop issue #213)",
            hint="emit Timeloop files from a compile at the target's own widths",
        )
    # The model first: creating --out first would make `joule compile resnet18 --out
    # resnet18` read the new, empty folder as the model.
    model = resolve_model(args.model, output_dir=args.out)
    out = Path(args.out)
    created = [d for d in (out, *out.parents) if not d.exists()]  # deepest first
    prepare_dir(out)  # fail before any solving
    try:
        return _compile(args, model)
    except BaseException:
        _remove_empty(created)  # no empty --out left behind by a failed compile
        raise


def _compile(args: argparse.Namespace, model: object) -> int:
    from joule.driver import CompileInterrupted, compile_model
    from joule.report import write_outputs

    cache = _open_cache(args)
    try:
        schedule = compile_model(
            model,
            args.target,
            objective=args.objective,
            dataflow=args.dataflow,
            mapper=args.mapper,
            factors=args.factors,
            time_limit=args.time_limit,
            workers=args.workers,
            samples=args.samples,
            max_cycles=args.max_cycles,
            min_utilization=args.min_utilization,
            batch=args.batch,
            dims=parse_dims(args.dim),
            print_after=frozenset(args.print_after),
            cache=cache,
            precision=args.precision,
        )
    except CompileInterrupted as stop:
        out = write_outputs(stop.schedule, args.out)
        print(
            f"joule: interrupted; kept {len(stop.schedule.layers)} mapped layers in "
            f"{out}/schedule.json (marked incomplete)",
            file=sys.stderr,
        )
        return 130
    finally:
        _report_cache(cache)
    failed = _emit(schedule, model, args)
    out = write_outputs(schedule, args.out)
    for warning in schedule.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    t = schedule.totals()
    print(
        f"{schedule.model} on {schedule.target}: {len(schedule.layers)} layers, "
        f"{t['energy_pj'] / 1e6:.3f} µJ ({t['energy_pj'] / max(t['macs'], 1):.3f} pJ/MAC, "
        f"bound {t['lower_bound_pj'] / 1e6:.3f} µJ), {t['cycles']:,} cycles, "
        f"{t['time_s']:.1f} s -> {out}/schedule.json, report.md, report.html"
    )
    return 1 if failed else 0


def _remove_empty(created: list[Path]) -> None:
    """Remove the directories this run created for --out, deepest first, while they are empty."""
    for directory in created:
        try:
            directory.rmdir()  # only ever removes an empty directory
        except OSError:
            return


def _emit(schedule: object, model: object, args: argparse.Namespace) -> bool:
    """Write what ``--emit`` asks for; True when the TVM verification failed."""
    from joule.targets import load_target

    failed = False
    if "timeloop" in args.emit:
        from joule.timeloop.writer import emit_timeloop

        emit_timeloop(schedule, args.out, load_target(args.target))  # type: ignore[arg-type]
    if "tvm" in args.emit:
        from joule.passes.tvm.emit_module import emit_tvm

        record = emit_tvm(
            schedule,  # type: ignore[arg-type]
            model,  # type: ignore[arg-type]
            args.out,
            target=args.target,
            batch=args.batch,
            dims=parse_dims(args.dim),
        )
        schedule.verification["tvm"] = record  # type: ignore[attr-defined]
        failed = not record["passed"]
        status = "passed" if record["passed"] else "FAILED"
        print(
            f"tvm: scheduled module {record['module']}; verification {status} "
            f"(max abs err {record['max_abs_err']}, max rel err {record['max_rel_err']})",
            file=sys.stderr if failed else sys.stdout,
        )
    return failed


def _open_cache(args: argparse.Namespace) -> ResultCache | None:
    """The result cache the flags ask for: none, an explicit path, or the default location."""
    from joule.cache import ResultCache, default_cache_path

    if args.no_cache:
        return None
    if args.cache is not None:
        return ResultCache(args.cache, required=True)  # unusable: an error (exit 2)
    return ResultCache(default_cache_path(), required=False)  # unusable: a warning


def _report_cache(cache: ResultCache | None) -> None:
    """Warnings about the cache (corrupt file rebuilt, unusable location) and its use."""
    if cache is None:
        return
    for warning in cache.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if cache.hits or cache.stored:
        print(
            f"cache: {cache.hits} layers reused, {cache.stored} stored in {cache.path}",
            file=sys.stderr,
        )
    cache.close()
