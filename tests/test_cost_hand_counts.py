"""Counts small enough to derive by hand, pinned against the model and the simulator.

One mapping per classic dataflow (weight-, output- and row-stationary) on a
three-level chip: DRAM -> a buffer keeping inputs and outputs (weights bypass
it, as in Eyeriss) -> a 2x2 array of PEs whose register files keep all three.
The comments derive every number from docs/cost-model.md.
"""

from __future__ import annotations

import pytest
from joule.cost import evaluate
from joule.ir.builders import conv2d
from joule.mapping import LevelLoops, Loop, Mapping
from joule.targets.spec import Network, StorageLevel, Target
from simulator import simulate

# Distinct per-access energies so that every counter shows up in the total.
HAND = Target(
    "hand",
    "DRAM -> buffer (inputs, outputs) -> 2x2 PEs (all)",
    (
        StorageLevel("DRAM", frozenset({"input", "weight", "output"}), 1, 1, 1, None, (),
                     read_pj=200.0, write_pj=200.0, update_pj=200.0),
        StorageLevel("Buf", frozenset({"input", "output"}), 1, 1, 1, None, (),
                     read_pj=6.0, write_pj=5.0, update_pj=7.0,
                     network=Network(multicast=True, spatial_reduction=True, hop_energy_pj=2.0)),
        StorageLevel("RF", frozenset({"input", "weight", "output"}), 4, 2, 2, None, (),
                     read_pj=1.0, write_pj=1.5, update_pj=2.0),
    ),
    mac_energy_pj=1.0,
)  # fmt: skip

Counts = dict[str, dict[str, tuple[int, int, int]]]  # level -> role -> (reads, fills, updates)


def _model_counts(mapping: Mapping, nest) -> Counts:  # noqa: ANN001 - LoopNest
    result = evaluate(nest, HAND, mapping)
    return {
        lvl: {role: (c.reads, c.fills, c.updates) for role, c in roles.items()}
        for lvl, roles in result.accesses.items()
    }


def _check(nest, mapping: Mapping, counts: Counts, network: Counts, energy_pj: float) -> None:  # noqa: ANN001
    result = evaluate(nest, HAND, mapping)
    assert result.macs == 48
    assert _model_counts(mapping, nest) == counts
    assert simulate(nest, HAND, mapping).as_tuples() == counts
    words = {
        lvl: {r: w for r, w in roles.items() if w} for lvl, roles in result.network_words.items()
    }
    assert {lvl: roles for lvl, roles in words.items() if roles} == network
    assert result.energy_pj == pytest.approx(energy_pj)


# O[k,p] += I[c, p+r] * W[k,c,r]: K=2 C=2 P=4 R=3 (Q=S=1), 48 MACs, input rows 0..5.
CONV1D = conv2d(k=2, c=2, p=4, q=1, r=3, s=1)


def test_weight_stationary_reads_each_weight_once_from_dram() -> None:
    # Buf: for R in 3; parallel K2 (X) x C2 (Y).  RF: for P in 4.
    # Each PE (k, c) keeps W[k,c,r] while P walks: the RF loop is irrelevant to W.
    mapping = Mapping((
        LevelLoops("DRAM"),
        LevelLoops("Buf", (Loop("R", 3),), (Loop("K", 2, "X"), Loop("C", 2, "Y"))),
        LevelLoops("RF", (Loop("P", 4),)),
    ))  # fmt: skip
    counts = {
        "DRAM": {
            # weights: 4 PEs need 4 different words per R step, 3 steps -> 12 reads
            "weight": (12, 0, 0),
            # inputs: read once into Buf -> Buf's 12 fills
            "input": (12, 0, 0),
            # outputs: Buf drains its 8-word tile (K2 x P4) once; all first -> 0 reads
            "output": (0, 0, 8),
        },
        "Buf": {
            # tile: 2 channels x rows 0..5 = 12 words, fetched once (no loops above).
            # reads: step r=0 the PEs need rows 0..3 of both channels (the two K
            # PEs of a channel share by multicast) = 8; steps r=1,2 one new row
            # each per channel = 2 + 2.  8 + 2 + 2 = 12.
            "input": (12, 12, 0),
            # the 4 PEs drain their 4-word tiles once = 16 words; the two C PEs
            # drain the same words and the network reduces them: 16 / 2 = 8
            # updates, each the first write of its word -> 0 reads, 0 fills.
            "output": (0, 0, 8),
        },
        "RF": {
            # 1 weight per PE, new every R step: 3 x 4 PEs = 12 fills; 1 read per MAC
            "weight": (48, 12, 0),
            # rows r..r+3 of channel c: 4 words, then 1 new row per R step:
            # (4 + 1 + 1) x 4 PEs = 24 fills; 1 read per MAC
            "input": (48, 24, 0),
            # O[k, 0..3] stays through R (irrelevant): 4 first touches per PE, no fills;
            # 48 updates, reads = 48 - 16 first = 32
            "output": (32, 0, 48),
        },
    }
    # network words (parent side): fills into / drains from the children
    network = {"DRAM": {"weight": 12, "input": 12, "output": 8}, "Buf": {"input": 24, "output": 16}}
    # DRAM (12 + 12 + 8) x 200 = 6400; Buf 12x6 + 12x5 + 8x7 = 188;
    # RF 48 + 12x1.5 + 48 + 24x1.5 + 32 + 48x2 = 278; network (24 + 16) x 2 = 80; MACs 48
    _check(CONV1D, mapping, counts, network, 6400 + 188 + 278 + 80 + 48)


def test_output_stationary_writes_each_output_once_to_dram() -> None:
    # Buf: for K in 2; parallel P2 (X) x P2 (Y).  RF: for C in 2, for R in 3.
    # Each PE keeps one output word O[k,p] while C and R (irrelevant to O) walk.
    mapping = Mapping((
        LevelLoops("DRAM"),
        LevelLoops("Buf", (Loop("K", 2),), (Loop("P", 2, "X"), Loop("P", 2, "Y"))),
        LevelLoops("RF", (Loop("C", 2), Loop("R", 3))),
    ))  # fmt: skip
    counts = {
        "DRAM": {
            # weights: all 4 PEs need the same 6 words W[k,:,:] per K step (multicast): 2 x 6
            "weight": (12, 0, 0),
            "input": (12, 0, 0),  # Buf's 12 fills
            "output": (0, 0, 8),  # Buf's 8-word tile drained once, all first writes
        },
        "Buf": {
            # tile 2 channels x rows 0..5 = 12, fetched once. reads: at k=0 each PE
            # fetches its 6-word window I[0..1, p..p+2]; the windows overlap but
            # differ (P is relevant to I), so no multicast: 4 x 6 = 24; at k=1 the
            # PEs keep their tiles (K is irrelevant to I) -> 24 reads.
            "input": (24, 12, 0),
            # each PE drains 1 word per K step: 2 x 4 = 8 distinct words (P is relevant,
            # nothing to reduce), all first writes of the 8-word tile -> 0 reads
            "output": (0, 0, 8),
        },
        "RF": {
            # W[k, 0..1, 0..2] = 6 words, new every K step: 12 x 4 PEs = 48 fills
            "weight": (48, 48, 0),
            # I[0..1, p..p+2] = 6 words, kept across K: 6 x 4 = 24 fills
            "input": (48, 24, 0),
            # 1 word per K step, each a first touch: no fills; 48 - 8 first = 40 reads
            "output": (40, 0, 48),
        },
    }
    network = {"DRAM": {"weight": 48, "input": 12, "output": 8}, "Buf": {"input": 24, "output": 8}}
    # DRAM 32 x 200 = 6400; Buf 24x6 + 12x5 + 8x7 = 260; RF 48 + 72 + 48 + 36 + 40 + 96 = 340;
    # network (24 + 8) x 2 = 64; MACs 48
    _check(CONV1D, mapping, counts, network, 6400 + 260 + 340 + 64 + 48)


def test_row_stationary_keeps_filter_rows_and_reduces_psums_across_filter_rows() -> None:
    # O[k,p,q] += I[p+r, q+s] * W[k,r,s]: K=2 P=2 Q=3 R=2 S=2, 48 MACs, input 3x4.
    # Buf: for K in 2; parallel P2 (X) x R2 (Y).  RF: for Q in 3, for S in 2.
    # PE (p, r) keeps filter row r, input row p+r and output row p (Eyeriss' 1-D primitive);
    # the R PEs of a column reduce their partial sums in the network.
    nest = conv2d(k=2, c=1, p=2, q=3, r=2, s=2)
    mapping = Mapping((
        LevelLoops("DRAM"),
        LevelLoops("Buf", (Loop("K", 2),), (Loop("P", 2, "X"), Loop("R", 2, "Y"))),
        LevelLoops("RF", (Loop("Q", 3), Loop("S", 2))),
    ))  # fmt: skip
    counts = {
        "DRAM": {
            # per K step the PEs need filter rows 0 and 1 (2 words each), the two P
            # PEs of a row share by multicast: 4 x 2 steps = 8
            "weight": (8, 0, 0),
            "input": (12, 0, 0),  # Buf's 12 fills
            "output": (0, 0, 12),  # Buf's 12-word tile (K2 x P2 x Q3), all first writes
        },
        "Buf": {
            # tile 3 rows x 4 columns = 12, once. reads: at k=0 PE (p, r) fetches
            # input row p+r (4 words). PEs (0,1) and (1,0) want the same row, but
            # P and R are both relevant to I, so the model (like Timeloop, which
            # puts X and Y in separate container levels) multicasts nothing:
            # 4 PEs x 4 = 16; at k=1 nothing new -> 16
            "input": (16, 12, 0),
            # each PE drains its 3-word output row per K step: 6 x 4 = 24; the two R
            # PEs of a P column drain the same words and are reduced: 12 updates, all
            # first writes -> 0 reads
            "output": (0, 0, 12),
        },
        "RF": {
            "weight": (48, 16, 0),  # 2-word filter row, new every K step: 4 x 4 PEs
            "input": (48, 16, 0),  # 4-word input row, kept across K: 4 x 4 PEs
            # 3-word output row per K step, all first touches: 6 per PE, reads 48 - 24
            "output": (24, 0, 48),
        },
    }
    network = {
        "DRAM": {"weight": 16, "input": 12, "output": 12},
        "Buf": {"input": 16, "output": 24},
    }
    # DRAM 32 x 200 = 6400; Buf 16x6 + 12x5 + 12x7 = 240; RF 48 + 24 + 48 + 24 + 24 + 96 = 264;
    # network (16 + 24) x 2 = 80; MACs 48
    _check(nest, mapping, counts, network, 6400 + 240 + 264 + 80 + 48)
