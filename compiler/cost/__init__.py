"""The cost model (no TVM): exact access counts, energy, cycles and a compulsory bound."""

from joule.cost.model import evaluate, lower_bound_pj, score
from joule.cost.result import AccessCounts, CostResult
from joule.cost.validate import check_capacity, check_structure


def validate_mapping(nest, target, mapping) -> None:  # noqa: ANN001 - re-exported helper
    """Raise MappingError naming the first violation of ``mapping``."""
    from joule.cost.nest import flatten

    check_structure(nest, target, mapping)
    check_capacity(nest, target, flatten(mapping, tuple(lvl.name for lvl in target.levels)))


__all__ = [
    "AccessCounts",
    "CostResult",
    "evaluate",
    "lower_bound_pj",
    "score",
    "validate_mapping",
]
