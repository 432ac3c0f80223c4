"""What Joule's passes transform: a network's layers on a target, with their mapping state.

A :class:`MappingModule` is to Joule's passes what an IRModule is to TVM's: each
pass takes one and returns one (with new layer states), and its text form
(:mod:`joule.module_text`) is what ``--print-after`` shows and parses back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from joule.ir.loopnest import LoopNest
from joule.ir.network import Network
from joule.targets.spec import Target


@dataclass(frozen=True)
class LayerState:
    """One call site: its loop nest as the passes have rewritten it, and what they decided."""

    original: LoopNest
    nest: LoopNest
    constraints: object | None = None  # joule.passes.mapper.mapspace.space.SpaceConstraints
    result: object | None = None  # joule.passes.mapper.outcome.SearchResult
    notes: tuple[str, ...] = ()
    target: Target | None = None  # its own (another precision), else the module's

    def with_(self, **changes: object) -> LayerState:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass
class MappingModule:
    network: Network
    target: Target
    layers: list[LayerState]

    @classmethod
    def from_network(cls, network: Network, target: Target) -> MappingModule:
        return cls(network, target, [LayerState(n, n) for n in network.loopnests])

    def target_of(self, layer: LayerState) -> Target:
        return layer.target or self.target

    def with_layers(self, layers: list[LayerState]) -> MappingModule:
        return MappingModule(self.network, self.target, layers)

    def text(self) -> str:
        """The module's text form: every layer's nest, mapspace and mapping once decided."""
        from joule.module_text import print_module  # it imports this module

        return print_module(self)
