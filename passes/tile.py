"""tile: choose every layer's tiling, loop order and spatial unrolling (CP-SAT by default).

Precondition: the dataflow pass has attached constraints. Layers with the same
shape signature and constraints are solved once; distinct ones are solved in
parallel worker processes. Each solve is deterministic, so the result does not
depend on the number of workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from dataclasses import dataclass, field

from compiler.pipeline import LayerState, MappingModule
from compiler.progress import Progress
from passes.mapper import map_layer
from passes.search import SearchOptions, SearchResult


@dataclass(frozen=True)
class TileAndOrder:
    mapper: str = "cpsat"
    options: SearchOptions = field(default_factory=SearchOptions)
    workers: int = 1
    name: str = "tile"

    def apply(self, module: MappingModule) -> MappingModule:
        groups: dict[tuple, list[int]] = {}
        for index, layer in enumerate(module.layers):
            key = (layer.nest.signature(), repr(layer.constraints))
            groups.setdefault(key, []).append(index)
        jobs = [module.layers[indices[0]] for indices in groups.values()]
        progress = Progress(len(jobs), f"mapping {len(jobs)} unique layers")
        results = self._solve(jobs, module, progress)
        layers = list(module.layers)
        for indices, result in zip(groups.values(), results, strict=True):
            for i in indices:
                layers[i] = layers[i].with_(result=result)
        return module.with_layers(layers)

    def _solve(
        self, jobs: list[LayerState], module: MappingModule, progress: Progress
    ) -> list[SearchResult]:
        args = [(j.nest, module.target, j.constraints, self.mapper, self.options) for j in jobs]
        workers = max(1, min(self.workers, len(jobs), os.cpu_count() or 1))
        if workers == 1:
            out = []
            for a in args:
                out.append(_solve_one(a))
                progress.advance(a[0].name)
            return out
        results: list[SearchResult | None] = [None] * len(args)
        with cf.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_solve_one, a): k for k, a in enumerate(args)}
            try:
                for fut in cf.as_completed(futures):
                    k = futures[fut]
                    results[k] = fut.result()
                    progress.advance(args[k][0].name)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return results  # type: ignore[return-value]


def _solve_one(args: tuple) -> SearchResult:
    nest, target, constraints, mapper, options = args
    return map_layer(nest, target, constraints, mapper=mapper, options=options)
