"""tile: choose every layer's tiling, loop order and spatial unrolling (CP-SAT by default).

Precondition: the dataflow pass has attached constraints. Layers with the same
shape signature and constraints are solved once. Before any solving, every
layer is checked to be within what the mapper can represent exactly (extents
at most 2^22, MACs at most 2^40, a bounded number of tilings per dim), so an
enormous layer is refused with a message instead of overflowing or hanging.

Results come from the result cache when it holds them (:mod:`joule.cache`);
the rest are solved in worker processes, and each is stored in the cache the
moment it arrives. Each solve is deterministic, so the result depends on
neither the number of workers nor the cache.

Solves always run in worker processes, each in its own process group: a
terminal's Ctrl-C reaches only this process, which stops the workers and
raises :class:`TileInterrupted` carrying the layers solved so far. (CP-SAT
catches SIGINT itself and would quietly return a truncated search; keeping the
signal away from it keeps every result a complete, cacheable solve.)
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import functools
import math
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from joule.cache import ResultCache, result_key
from joule.defaults import DEFAULT_WORKERS
from joule.errors import JouleError, SolverError
from joule.ir.loopnest import LoopNest
from joule.passes.mapper.map_layer import map_layer
from joule.passes.mapper.mapspace.space import MapSpace
from joule.passes.mapper.outcome import SearchOptions, SearchResult, SolverReport
from joule.pipeline import LayerState, MappingModule
from joule.progress import Progress
from joule.targets.spec import Target

# The largest loop extent mapped: a conservative cap, not a hard limit of the code. Nothing
# enumerates O(extent) values any more (the compulsory bound caps its index enumeration at
# joule.cost.model.ENUMERATE_LIMIT); it keeps trial division and the factor tables quick.
# Raise it together with a test of a layer at the new size.
MAX_EXTENT = 2**22
MAX_MACS = 2**40  # keeps every access count x per-access energy inside CP-SAT's 62-bit objective
MAX_TILINGS = 50_000  # per dim: the size of the element tables the CP-SAT model builds
_PR_SET_PDEATHSIG = 1


class TileInterrupted(KeyboardInterrupt):
    """Ctrl-C during tiling: ``module`` holds every layer solved before it (others unset)."""

    def __init__(self, module: MappingModule) -> None:
        super().__init__("interrupted while mapping layers")
        self.module = module


@dataclass(frozen=True)
class TileAndOrder:
    mapper: str = "cpsat"
    options: SearchOptions = field(default_factory=SearchOptions)
    workers: int = DEFAULT_WORKERS
    cache: ResultCache | None = field(default=None, compare=False)
    name: str = "tile"

    def apply(self, module: MappingModule) -> MappingModule:
        groups: dict[tuple, list[int]] = {}
        for index, layer in enumerate(module.layers):
            own = module.target_of(layer).content_hash
            key = (layer.nest.signature(), repr(layer.constraints), own)
            groups.setdefault(key, []).append(index)
        jobs = [module.layers[indices[0]] for indices in groups.values()]
        for job in jobs:
            check_size(job.nest, module.target_of(job), job.constraints)
        results: list[SearchResult | None] = [None] * len(jobs)
        try:
            self._solve(jobs, module, results)
        except KeyboardInterrupt:
            raise TileInterrupted(_with_results(module, groups, results)) from None
        return _with_results(module, groups, results)

    def _solve(
        self, jobs: list[LayerState], module: MappingModule, results: list[SearchResult | None]
    ) -> None:
        """Fill ``results`` in place (so an interrupt keeps what was solved)."""
        targets = [module.target_of(j) for j in jobs]
        keys = [
            result_key(j.nest, t, j.constraints, self.mapper, self.options)
            for j, t in zip(jobs, targets, strict=True)
        ]
        todo = []
        for k, job in enumerate(jobs):
            results[k] = self._cached(keys[k], job.nest, targets[k])
            if results[k] is None:
                todo.append(k)
        cached_note = f", {len(jobs) - len(todo)} from the cache" if len(todo) < len(jobs) else ""
        progress = Progress(len(todo), f"mapping {len(jobs)} unique layers{cached_note}")
        if not todo:
            return
        workers = max(1, min(self.workers, len(todo), os.cpu_count() or 1))
        pool = cf.ProcessPoolExecutor(
            max_workers=workers, initializer=_worker_init, initargs=(os.getpid(),)
        )
        try:
            futures = {
                pool.submit(
                    map_layer,
                    jobs[k].nest,
                    targets[k],
                    jobs[k].constraints,
                    mapper=self.mapper,
                    options=self.options,
                ): k
                for k in todo
            }
            for fut in cf.as_completed(futures):
                k = futures[fut]
                try:
                    result = results[k] = fut.result()
                except BrokenProcessPool:
                    raise _worker_died(jobs[k].nest) from None
                except JouleError as err:
                    # Not chained to the worker's traceback, which repeats the message:
                    # a user's error says all there is to say.
                    raise err from None
                if self.cache is not None:
                    self.cache.put(keys[k], result.mapping, result.report.to_dict())
                progress.advance(jobs[k].nest.name)
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)

    def _cached(self, key: str, nest: LoopNest, target: Target) -> SearchResult | None:
        """The cache's answer as a SearchResult (its cost freshly scored by the model)."""
        hit = self.cache.get(key, nest, target) if self.cache is not None else None
        if hit is None:
            return None
        return SearchResult(hit.mapping, hit.cost, SolverReport(**hit.report))


def check_size(nest: LoopNest, target: Target, constraints: object) -> None:
    """Refuse a layer the mapper cannot represent exactly, naming the dim and the limit."""
    where = f"layer @{nest.name}" + (f" (ONNX node {nest.onnx_node})" if nest.onnx_node else "")
    for dim, extent in nest.dims:
        if extent < 1:
            raise JouleError(
                f"layer @{nest.name} has an empty loop: {dim} = {extent}",
                where=where,
                hint="a zero-sized tensor reaches this layer; check the model's shapes "
                "(Reshape/Slice constants, --batch, --dim)",
            )
        if extent > MAX_EXTENT:
            raise JouleError(
                f"layer @{nest.name} has {dim} = {extent:,}, beyond the largest extent "
                f"Joule maps ({MAX_EXTENT:,} = 2^22)",
                where=where,
                hint="bind smaller symbolic sizes (--batch, --dim) or split the layer in the model",
            )
    if nest.macs > MAX_MACS:
        raise JouleError(
            f"layer @{nest.name} has {nest.macs:,} MACs, beyond the {MAX_MACS:,} (2^40) "
            "that Joule's mapper counts exactly",
            where=where,
            hint="bind smaller symbolic sizes (--batch, --dim) or split the layer in the model",
        )
    if constraints is None:
        return
    space = MapSpace(nest, target, constraints)  # type: ignore[arg-type]
    for dim in space.dims:
        limits = tuple(space.slot_limit(s) for s in space.slots[dim])
        count = count_tilings(nest.extents[dim], limits)
        if count > MAX_TILINGS:
            raise JouleError(
                f"layer @{nest.name}: {dim} = {nest.extents[dim]:,} can be tiled {count:,} ways "
                f"over the target's {len(limits)} loop slots; the mapper handles "
                f"{MAX_TILINGS:,}",
                where=where,
                hint="constrain the mapping (--dataflow, or temporal_dims in the target) "
                "or give the dim an extent with fewer prime factors",
            )


def count_tilings(extent: int, limits: tuple[int, ...]) -> int:
    """How many ordered factorisations of ``extent`` fit ``limits`` (computed, not listed)."""
    divisors = _divisors(extent)

    @functools.cache
    def count(n: int, i: int) -> int:
        if i == len(limits):
            return int(n == 1)
        return sum(count(n // f, i + 1) for f in divisors if f <= limits[i] and n % f == 0)

    return count(extent, 0)


def _divisors(n: int) -> list[int]:
    """All divisors, from the prime factorisation (trial division: fast for n <= MAX_EXTENT)."""
    primes: dict[int, int] = {}
    rest, p = n, 2
    while p * p <= rest:
        while rest % p == 0:
            primes[p] = primes.get(p, 0) + 1
            rest //= p
        p += 1
    if rest > 1:
        primes[rest] = primes.get(rest, 0) + 1
    divisors = [1]
    for prime, power in primes.items():
        divisors = [d * prime**e for d in divisors for e in range(power + 1)]
    assert math.prod(prime**power for prime, power in primes.items()) == n
    return sorted(divisors)


def _with_results(
    module: MappingModule, groups: dict[tuple, list[int]], results: list[SearchResult | None]
) -> MappingModule:
    layers = list(module.layers)
    for indices, result in zip(groups.values(), results, strict=True):
        if result is not None:
            for i in indices:
                layers[i] = layers[i].with_(result=result)
    return module.with_layers(layers)


def _worker_died(nest: LoopNest) -> SolverError:
    where = f"layer @{nest.name}" + (f" (ONNX node {nest.onnx_node})" if nest.onnx_node else "")
    return SolverError(
        f"the solver process mapping layer @{nest.name} stopped abruptly "
        "(killed from outside, or out of memory)",
        where=where,
        hint="free memory or use fewer --workers and run again; "
        "layers solved so far are in the result cache",
    )


def _worker_init(parent: int) -> None:
    """Leave the terminal's process group and die with the parent.

    Ctrl-C then reaches only the parent (which stops the pool), and a parent
    killed with SIGKILL does not leave solvers running (Linux prctl).
    """
    os.setpgrp()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Kill the workers now (a solve may run for minutes) and release the pool."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
