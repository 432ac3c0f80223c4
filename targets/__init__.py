"""Accelerator targets: YAML descriptions and the code that loads and checks them."""

from targets.loader import bundled_targets, load_target
from targets.spec import LevelConstraints, Network, StorageLevel, Target

__all__ = [
    "LevelConstraints",
    "Network",
    "StorageLevel",
    "Target",
    "bundled_targets",
    "load_target",
]
