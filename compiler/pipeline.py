"""What Joule's passes transform: a network's layers on a target, with their mapping state.

A :class:`MappingModule` is to Joule's passes what an IRModule is to TVM's: each
pass takes one and returns one (with new layer states), and its text form is
what ``--print-after`` shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from joule.ir.loopnest import LoopNest
from joule.ir.network import Network
from joule.ir.text import print_loopnest
from joule.targets.spec import Target


@dataclass(frozen=True)
class LayerState:
    """One call site: its loop nest as the passes have rewritten it, and what they decided."""

    original: LoopNest
    nest: LoopNest
    constraints: object | None = None  # joule.passes.mapper.mapspace.space.SpaceConstraints
    result: object | None = None  # joule.passes.mapper.outcome.SearchResult
    notes: tuple[str, ...] = ()

    def with_(self, **changes: object) -> LayerState:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class MappingModule:
    network: Network
    target: Target
    layers: list[LayerState]
    options: dict[str, object] = field(default_factory=dict)

    @classmethod
    def from_network(cls, network: Network, target: Target, **options: object) -> MappingModule:
        layers = [LayerState(n, n) for n in network.loopnests]
        return cls(network, target, layers, dict(options))

    def with_layers(self, layers: list[LayerState]) -> MappingModule:
        return MappingModule(self.network, self.target, layers, self.options)

    def text(self) -> str:
        """Every layer's loop nest, and its dataflow and mapping once decided."""
        chunks = []
        for layer in self.layers:
            lines = [print_loopnest(layer.nest)]
            if layer.constraints is not None:
                lines.append(f"// dataflow: {getattr(layer.constraints, 'dataflow', '?')}")
            if layer.result is not None:
                result = layer.result
                lines.append(
                    f"// mapping on {self.target.name}: "
                    f"{result.cost.energy_pj:.6g} pJ, {result.cost.cycles} cycles, "
                    f"{result.report.status}"
                )
                lines += ["// " + ln for ln in result.mapping.loops_text().splitlines()]
            chunks.append("\n".join(lines))
        return "\n\n".join(chunks) + "\n"
