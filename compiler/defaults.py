"""The search budget every entry point starts from, defined once.

``joule compile``, :func:`joule.driver.compile_model`, ``SearchOptions``, the
``tile`` pass, ``JouleSchedule`` and the benchmark scripts that mean "the
default" all read these, so a schedule does not depend on which door it came in.

* ``DEFAULT_TIME_LIMIT_S``: per distinct layer, in deterministic units (CP-SAT's
  deterministic seconds and the proof's work units; roughly wall seconds). At
  2 s every distinct layer of ResNet-50 on ``eyeriss`` is proven optimal.
* ``DEFAULT_SAMPLES``: valid points the random mapper scores per layer (the
  Timeloop-style baseline, "random-10000" in the README's tables).
* ``DEFAULT_WORKERS``: layers solved in parallel processes. Each solve is
  deterministic, so this changes wall time only, never a result; two uses a
  second core where there is one (the pool never outnumbers the CPUs or the
  layers) without taking over a shared machine.
"""

from __future__ import annotations

DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_SAMPLES = 10_000
DEFAULT_WORKERS = 2
