"""Accelerator targets: YAML descriptions and the code that loads and checks them."""

from joule.targets.loader import bundled_targets, load_target
from joule.targets.spec import LevelConstraints, Network, StorageLevel, Target

__all__ = [
    "LevelConstraints",
    "Network",
    "StorageLevel",
    "Target",
    "bundled_targets",
    "load_target",
]
