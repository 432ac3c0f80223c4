"""What the cost model returns: counts in words, energies in pJ, time in cycles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AccessCounts:
    """Accesses to one tensor at one level, summed over all utilized instances (words)."""

    reads: int = 0
    fills: int = 0
    updates: int = 0

    @property
    def total(self) -> int:
        return self.reads + self.fills + self.updates

    def to_dict(self) -> dict[str, int]:
        return {"reads": self.reads, "fills": self.fills, "updates": self.updates}


@dataclass(frozen=True)
class CostResult:
    macs: int
    energy_pj: float  # includes mac_energy_pj
    mac_energy_pj: float
    energy_breakdown_pj: dict[str, dict[str, float]]  # level -> role -> pJ
    accesses: dict[str, dict[str, AccessCounts]]  # level -> role -> counts
    network_words: dict[str, dict[str, int]]  # level (parent side) -> role -> words
    link_words: dict[str, dict[str, int]]  # level (parent side) -> role -> words neighbours forward
    cycles: int
    compute_cycles: int
    utilization: float
    lower_bound_pj: float
    pes: int
    bottleneck: str = "compute"
    tile_words: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def edp(self) -> float:
        return self.energy_pj * self.cycles

    def level_energy_pj(self) -> dict[str, float]:
        return {lvl: sum(roles.values()) for lvl, roles in self.energy_breakdown_pj.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "energy_pj": self.energy_pj,
            "mac_energy_pj": self.mac_energy_pj,
            "energy_breakdown_pj": self.energy_breakdown_pj,
            "accesses": {
                lvl: {role: counts.to_dict() for role, counts in roles.items()}
                for lvl, roles in self.accesses.items()
            },
            "link_words": self.link_words,
            "cycles": self.cycles,
            "utilization": self.utilization,
            "lower_bound_pj": self.lower_bound_pj,
        }
