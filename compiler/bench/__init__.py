"""Benchmark suites behind ``joule bench SUITE --out DIR``.

Each suite is a module with ``run(out, config) -> dict`` that maps layers with
Joule's mappers, scores every mapping with the cost model and writes
``DIR/SUITE.json``, ``DIR/SUITE.md`` and PNG plots:

* ``dataflows``: the Eyeriss (ISCA'16) dataflow study on AlexNet at batch 16;
* ``isoarea``: the same study at equal area, storage split and energies from the area model;
* ``networks``: six networks on every bundled target;
* ``solver``: CP-SAT against the exhaustive and random mappers;
* ``peers``: ZigZag (optional extra ``peers``) side by side with Joule;
* ``precision``: measured accuracy against certified energy per bit width, and the
  mixed-precision search (optional extra ``accuracy``).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from joule.bench.common import BenchConfig

SUITES: dict[str, str] = {
    "dataflows": "joule.bench.dataflows",
    "isoarea": "joule.bench.isoarea",
    "networks": "joule.bench.networks",
    "solver": "joule.bench.solver",
    "peers": "joule.bench.peers",
    "precision": "joule.bench.precision",
}


def run_suite(name: str, out: str | Path, config: BenchConfig | None = None) -> dict[str, Any]:
    """Run suite ``name`` and write its files into ``out``; returns the JSON data."""
    from joule.errors import JouleError
    from joule.option_checks import check_options

    if name not in SUITES:
        raise JouleError(f"unknown suite {name!r}", hint=f"choose one of {', '.join(SUITES)}")
    config = config or BenchConfig()
    check_options(
        "BenchConfig",
        time_limit_s=config.time_limit_s,
        workers=config.workers,
        samples=config.samples,
    )
    module = importlib.import_module(SUITES[name])
    return module.run(Path(out), config)


__all__ = ["SUITES", "BenchConfig", "run_suite"]
