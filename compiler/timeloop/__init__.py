"""Timeloop interop (no TVM): read Timeloop v0.4 problems and mappings as Joule objects."""

from joule.timeloop.mapping import load_mapping
from joule.timeloop.problem import load_problem, problem_from_dict

__all__ = ["load_mapping", "load_problem", "problem_from_dict"]
