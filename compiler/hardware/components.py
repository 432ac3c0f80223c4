"""Energy and area of one storage level or MAC from its size: the scaling model.

Every constant below is at 65 nm (the node of the calibration tables) and
carries its source. Energies are per *vector* access (the memory's full width),
as Accelergy's ERT gives them; :mod:`joule.hardware.template` divides by the
words per vector to get Joule's pJ per word. Areas are um^2 per instance.
docs/hardware-model.md derives each law and lists the calibration numbers.

Calibration data: Accelergy's ERT and ART of the Timeloop/Accelergy exercises'
``eyeriss_like`` design at 65 nm (shared/reference/timeloop/runs/*/ ERT and
``rs_fixed_mapping_model/timeloop-model.ART.yaml``), the same tables
``targets/eyeriss.yaml`` copies its energies from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from joule.errors import TargetError
from joule.hardware.technology import area_factor, energy_factor

REF_NODE_NM = 65.0  # every constant in this file is at this node

# --- Register file: Accelergy's smartbuffer_RF -------------------------------
# Structure (timeloop-accelergy-exercises, components/smartbuffer_RF.yaml): a
# Library regfile of max(32, width) bits x max(64, depth) entries whose dynamic
# energy is scaled by (width / mem_width) * (depth / mem_depth) ** 0.78, plus one
# address-generator count per access. 0.78 = 1.56 / 2 is Accelergy's CACTI-based
# depth exponent (accelergy-library-plug-in scaling.py, ``depth``).
RF_MIN_WIDTH_BITS = 32  # smartbuffer_RF: memory_width = max(32, width)
RF_MIN_DEPTH = 64  # smartbuffer_RF: memory_depth = max(64, depth)
RF_DEPTH_EXPONENT = 0.78  # Accelergy Library scaling of energy with depth (1.56 / 2)
# The Library regfile itself (32 bits x 64 entries, 65 nm), per vector access, and
# its growth beyond 64 entries, (depth / 64) ** beta: fitted to the eyeriss_like ERT
# (ifmap_spad 12x16 and psum_spad 16x16 share the 32x64 regfile and differ only by
# the 0.78 law, which fixes the 32x64 energy and the address term; weights_spad
# 192x16 is a 32x192 regfile at 0.5x, which fixes beta).
RF_READ_32X64_PJ = 3.4127  # fit: eyeriss_like ERT ifmap_spad/psum_spad read
RF_WRITE_32X64_PJ = 2.9606  # fit: eyeriss_like ERT ifmap_spad/psum_spad write
RF_READ_DEPTH_BETA = 0.9225  # fit: eyeriss_like ERT weights_spad read (depth 192)
RF_WRITE_DEPTH_BETA = 1.0070  # fit: eyeriss_like ERT weights_spad write (depth 192)
RF_ADDRESS_PJ = 0.03463  # fit: the ERT's address_generators term (NeuroSim counter), per access
# Area: Accelergy's ART of the three spads is linear in the bits actually stored
# (width x depth, 192 / 256 / 3072 bits -> 21.89 / 21.76 / 21.44 um^2 per bit);
# one constant, least relative squares over the three, reproduces each within 1.2 %.
RF_AREA_PER_BIT_UM2 = 21.69  # fit: eyeriss_like ART ifmap/weights/psum_spad

# --- SRAM: Accelergy's smartbuffer_SRAM (CACTI 7 + two NeuroSim address adders) ---
# CACTI-like laws: energy per access ~ width x sqrt(capacity) (bitline and wordline
# lengths grow with the square root of the array), area ~ capacity.
SRAM_REF_BITS = 16384 * 64  # eyeriss_like shared_glb: depth 16384 x width 64 (128 KiB)
SRAM_REF_WIDTH_BITS = 64
SRAM_CAPACITY_EXPONENT = 0.5  # CACTI energy ~ capacity^0.5 (issue 16; Accelergy docs)
SRAM_READ_REF_PJ = 59.336  # eyeriss_like ERT shared_glb read, CactiSRAM part
SRAM_WRITE_REF_PJ = 49.595  # eyeriss_like ERT shared_glb write 49.7147 minus the adder
SRAM_ADDRESS_REF_PJ = 0.1197  # eyeriss_like ERT shared_glb address_generators (14-bit)
SRAM_ADDRESS_REF_BITS = 14  # log2(16384)
SRAM_AREA_PER_BIT_UM2 = 896780.0 / SRAM_REF_BITS  # eyeriss_like ART shared_glb, 0.8552 um^2/bit

# --- MAC: Accelergy's intmac = Aladdin adder + Aladdin multiplier --------------
# Aladdin (Shao et al., ISCA 2014) via the Accelergy Library: a 32-bit adder is
# 0.21 pJ and 278 um^2 at 40 nm, linear in width; a multiplier scales with the
# product of its operand widths (quadratic for equal widths).
ALADDIN_ADDER_32B_40NM_PJ = 0.21  # accelergy-library-plug-in library/aladdin/aladdin_adder.csv
ALADDIN_ADDER_32B_40NM_UM2 = 278.0  # same file
MAC_ADD_16B_PJ = ALADDIN_ADDER_32B_40NM_PJ / 2 * energy_factor(40, REF_NODE_NM)
MAC_ADD_16B_UM2 = ALADDIN_ADDER_32B_40NM_UM2 / 2 * area_factor(40, REF_NODE_NM)
# The 8x8-bit multiplier: the rest of the eyeriss_like ERT's mac compute energy
# (1.40883 pJ) and ART area (1397.4 um^2) once the Aladdin adder is taken out.
MAC_MUL_8X8_PJ = 1.40883 - MAC_ADD_16B_PJ  # eyeriss_like ERT mac compute
MAC_MUL_8X8_UM2 = 1397.4 - MAC_ADD_16B_UM2  # eyeriss_like ART mac

# --- DRAM: energy per bit by kind, area 0 (off chip) ---------------------------
# Accelergy's CACTI plug-in (accelergy-cacti-plug-in cacti_wrapper.py, DRAM_estimate_energy):
# LPDDR4 8 pJ/bit ("public data"); LPDDR 40 and DDR3 70 (Malladi et al., ISCA 2012);
# GDDR5 14 and HBM2 3.9 (Chatterjee et al., MICRO 2017). Node-independent.
DRAM_PJ_PER_BIT = {"LPDDR4": 8.0, "LPDDR": 40.0, "DDR3": 70.0, "GDDR5": 14.0, "HBM2": 3.9}


@dataclass(frozen=True)
class Estimate:
    """One component's derived numbers: per vector access energies, area per instance."""

    read_pj: float
    write_pj: float
    area_um2: float
    model: str  # the law used, for energy_source lines and the area table

    @property
    def update_pj(self) -> float:
        return self.write_pj


def regfile(width_bits: int, depth: int, node_nm: float) -> Estimate:
    """Accelergy's smartbuffer_RF: Library regfile + 0.78 depth law + address counter."""
    _positive(width_bits=width_bits, depth=depth)
    mem_w, mem_d = max(RF_MIN_WIDTH_BITS, width_bits), max(RF_MIN_DEPTH, depth)
    share = (width_bits / mem_w) * (depth / mem_d) ** RF_DEPTH_EXPONENT
    grow = mem_w / RF_MIN_WIDTH_BITS
    read = RF_READ_32X64_PJ * grow * (mem_d / RF_MIN_DEPTH) ** RF_READ_DEPTH_BETA
    write = RF_WRITE_32X64_PJ * grow * (mem_d / RF_MIN_DEPTH) ** RF_WRITE_DEPTH_BETA
    e = energy_factor(REF_NODE_NM, node_nm)
    a = area_factor(REF_NODE_NM, node_nm)
    return Estimate(
        read_pj=(read * share + RF_ADDRESS_PJ) * e,
        write_pj=(write * share + RF_ADDRESS_PJ) * e,
        area_um2=RF_AREA_PER_BIT_UM2 * width_bits * depth * a,
        model=f"regfile {depth}x{width_bits} b (smartbuffer_RF law)",
    )


def sram(width_bits: int, depth: int, node_nm: float) -> Estimate:
    """CACTI-like SRAM: energy ~ width x sqrt(capacity), area ~ capacity, + address adders."""
    _positive(width_bits=width_bits, depth=depth)
    bits = width_bits * depth
    scale = (width_bits / SRAM_REF_WIDTH_BITS) * (bits / SRAM_REF_BITS) ** SRAM_CAPACITY_EXPONENT
    address = SRAM_ADDRESS_REF_PJ * max(1.0, math.log2(depth)) / SRAM_ADDRESS_REF_BITS
    e = energy_factor(REF_NODE_NM, node_nm)
    return Estimate(
        read_pj=(SRAM_READ_REF_PJ * scale + address) * e,
        write_pj=(SRAM_WRITE_REF_PJ * scale + address) * e,
        area_um2=SRAM_AREA_PER_BIT_UM2 * bits * area_factor(REF_NODE_NM, node_nm),
        model=f"SRAM {depth}x{width_bits} b (CACTI-like law)",
    )


def dram(kind: str, width_bits: int) -> Estimate:
    """Off-chip DRAM: pJ per bit by kind times the access width; no on-chip area."""
    try:
        per_bit = DRAM_PJ_PER_BIT[kind]
    except KeyError:
        raise TargetError(
            f"unknown DRAM kind {kind!r}",
            where="parameter dram",
            hint="use one of " + ", ".join(DRAM_PJ_PER_BIT),
        ) from None
    return Estimate(
        read_pj=per_bit * width_bits,
        write_pj=per_bit * width_bits,
        area_um2=0.0,
        model=f"{kind} DRAM, {per_bit:g} pJ/bit",
    )


def intmac(multiplier_bits: int, adder_bits: int, node_nm: float) -> Estimate:
    """Integer MAC: multiplier ~ product of operand widths, adder ~ width (Aladdin)."""
    _positive(multiplier_bits=multiplier_bits, adder_bits=adder_bits)
    mul = (multiplier_bits * multiplier_bits) / 64
    add = adder_bits / 16
    energy = (MAC_MUL_8X8_PJ * mul + MAC_ADD_16B_PJ * add) * energy_factor(REF_NODE_NM, node_nm)
    area = (MAC_MUL_8X8_UM2 * mul + MAC_ADD_16B_UM2 * add) * area_factor(REF_NODE_NM, node_nm)
    return Estimate(
        read_pj=energy,
        write_pj=0.0,
        area_um2=area,
        model=f"intmac {multiplier_bits}x{multiplier_bits} b multiplier + {adder_bits} b adder",
    )


def _positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise TargetError(
                f"{name} must be a positive integer, got {value!r}",
                where=f"component {name}",
                hint="check the template's parameters",
            )
