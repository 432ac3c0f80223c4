"""Every entry point starts from the one set of defaults in ``joule.defaults``."""

from __future__ import annotations

import argparse
import inspect

from joule.defaults import DEFAULT_SAMPLES, DEFAULT_TIME_LIMIT_S, DEFAULT_WORKERS


def test_cli_python_api_search_options_tile_and_tvm_pass_share_the_defaults() -> None:
    from joule.cli import compile as compile_cli
    from joule.driver import compile_model
    from joule.passes.mapper.outcome import SearchOptions
    from joule.passes.tile import TileAndOrder
    from joule.passes.tvm.module_pass import JouleSchedule

    parser = argparse.ArgumentParser()
    compile_cli.add_arguments(parser)
    cli = parser.parse_args(["model", "--out", "out"])
    assert (cli.time_limit, cli.samples, cli.workers) == (
        DEFAULT_TIME_LIMIT_S,
        DEFAULT_SAMPLES,
        DEFAULT_WORKERS,
    )
    api = inspect.signature(compile_model).parameters
    assert (api["time_limit"].default, api["samples"].default, api["workers"].default) == (
        DEFAULT_TIME_LIMIT_S,
        DEFAULT_SAMPLES,
        DEFAULT_WORKERS,
    )
    options = SearchOptions()
    assert (options.time_limit_s, options.samples) == (DEFAULT_TIME_LIMIT_S, DEFAULT_SAMPLES)
    assert TileAndOrder().workers == DEFAULT_WORKERS
    tvm_pass = inspect.signature(JouleSchedule.__init__).parameters  # TVM wraps the dataclass
    assert (tvm_pass["time_limit"].default, tvm_pass["samples"].default) == (
        DEFAULT_TIME_LIMIT_S,
        DEFAULT_SAMPLES,
    )


def test_joule_compile_keeps_its_budget_of_two_seconds_and_ten_thousand_samples() -> None:
    # Changing these changes every `joule compile` result and the README's measurements.
    assert (DEFAULT_TIME_LIMIT_S, DEFAULT_SAMPLES) == (2.0, 10_000)
