"""Process-node scaling of energy and area (Stillmaker & Baas 2017).

Source: A. Stillmaker, B. Baas, "Scaling equations for the accurate prediction of
CMOS device performance from 180 nm to 7 nm", Integration 58 (2017) 74-81,
doi:10.1016/j.vlsi.2017.02.002. The two tables below are that paper's fits as
Accelergy's Library plug-in carries them (Accelergy-Project/accelergy-library-plug-in,
``scaling.py``): the area factor from node X to node Y is ``AREA_SCALING[X][Y]``;
the energy of a switch at node N is ``a Vdd^2 + b Vdd + c`` with (a, b, c) =
``ENERGY_SCALING[N]``, evaluated at Vdd = 0.8 V as the plug-in does by default.
Between two tabulated nodes both are interpolated linearly in the table index,
exactly as the plug-in does, so a Joule template and Accelergy agree on node scaling.
"""

from __future__ import annotations

from math import ceil, floor

from joule.errors import TargetError

TECH_NODES_NM = (130, 90, 65, 45, 32, 20, 16, 14, 10, 7)
AREA_SCALING = (
    (1, 0.44, 0.23, 0.16, 0.072, 0.033, 0.03, 0.027, 0.016, 0.0092),
    (2.3, 1, 0.53, 0.35, 0.16, 0.075, 0.067, 0.061, 0.036, 0.021),
    (4.3, 1.9, 1, 0.66, 0.31, 0.14, 0.13, 0.12, 0.068, 0.039),
    (6.4, 2.8, 1.5, 1, 0.46, 0.21, 0.19, 0.17, 0.1, 0.059),
    (14, 6.1, 3.3, 2.2, 1, 0.46, 0.41, 0.38, 0.22, 0.13),
    (30, 13, 7.1, 4.7, 2.2, 1, 0.89, 0.82, 0.48, 0.28),
    (34, 15, 7.9, 5.3, 2.4, 1.1, 1, 0.91, 0.54, 0.31),
    (37, 16, 8.7, 5.8, 2.7, 1.2, 1.1, 1, 0.59, 0.34),
    (63, 28, 15, 9.8, 4.5, 2.1, 1.9, 1.7, 1, 0.58),
    (110, 48, 25, 17, 7.8, 3.6, 3.2, 2.9, 1.7, 1),
)
ENERGY_SCALING = (
    (7.171, -6.709, 2.904),
    (4.762, -4.781, 2.092),
    (3.755, -4.398, 1.975),
    (1.103, -0.362, 0.2767),
    (0.9559, -0.7823, 0.471),
    (0.373, -0.1582, 0.04104),
    (0.2958, -0.1241, 0.03024),
    (0.2363, -0.09675, 0.02239),
    (0.2068, -0.09311, 0.02375),
    (0.1776, -0.09097, 0.02447),
)
DEFAULT_VDD = 0.8  # the Library plug-in's default supply for energy scaling


def node_index(node_nm: float) -> float:
    """Fractional index of ``node_nm`` in TECH_NODES_NM (linear between neighbours)."""
    if not TECH_NODES_NM[-1] <= node_nm <= TECH_NODES_NM[0]:
        raise TargetError(
            f"technology node {node_nm:g} nm is outside the scaling tables",
            where="parameter technology_nm",
            hint=f"use a node from {TECH_NODES_NM[-1]} to {TECH_NODES_NM[0]} nm",
        )
    for i in range(len(TECH_NODES_NM) - 1):
        big, small = TECH_NODES_NM[i], TECH_NODES_NM[i + 1]
        if small <= node_nm <= big:
            return i + (big - node_nm) / (big - small)
    return float(len(TECH_NODES_NM) - 1)


def area_factor(from_nm: float, to_nm: float) -> float:
    """Multiply an area at ``from_nm`` by this to get it at ``to_nm`` (2-D interpolation)."""
    x, y = node_index(from_nm), node_index(to_nm)
    fx, fy = x % 1, y % 1
    return (
        AREA_SCALING[floor(x)][floor(y)] * (1 - fx) * (1 - fy)
        + AREA_SCALING[floor(x)][ceil(y)] * (1 - fx) * fy
        + AREA_SCALING[ceil(x)][floor(y)] * fx * (1 - fy)
        + AREA_SCALING[ceil(x)][ceil(y)] * fx * fy
    )


def _switch_energy(index: float, vdd: float) -> float:
    def at(i: int) -> float:
        a, b, c = ENERGY_SCALING[i]
        return a * vdd * vdd + b * vdd + c

    return at(floor(index)) * (1 - index % 1) + at(ceil(index)) * (index % 1)


def energy_factor(from_nm: float, to_nm: float, vdd: float = DEFAULT_VDD) -> float:
    """Multiply a per-access energy at ``from_nm`` by this to get it at ``to_nm``."""
    return _switch_energy(node_index(to_nm), vdd) / _switch_energy(node_index(from_nm), vdd)
