"""Accelerator targets: YAML descriptions and the code that loads and checks them."""

from targets.spec import LevelConstraints, Network, StorageLevel, Target

__all__ = ["LevelConstraints", "Network", "StorageLevel", "Target"]
