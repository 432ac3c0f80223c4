"""joule bench isoarea: the iso-area designs come from the area model and the study runs."""

from __future__ import annotations

import json
from pathlib import Path

from joule.bench.isoarea import (
    ISO_TOLERANCE,
    PE_STORAGE,
    RS_GLB_BYTES,
    hop_pj,
    iso_designs,
    storage_um2,
)
from joule.cli import main
from joule.hardware import components


def test_every_dataflow_has_rs_storage_area_from_the_component_laws() -> None:
    designs = iso_designs()
    rs = designs["rs"]
    # RS baseline: 256 PEs x 512 B of regfile + a 128 kB SRAM buffer, priced by the laws.
    rf = sum(components.regfile(16, d, 65).area_um2 for d in PE_STORAGE["rs"])
    glb = components.sram(64, RS_GLB_BYTES * 8 // 64, 65).area_um2
    assert abs(storage_um2(rs) - (256 * rf + glb)) / storage_um2(rs) < 1e-9
    for df, inst in designs.items():
        assert inst.target.pes == 256
        assert abs(storage_um2(inst) / storage_um2(rs) - 1) < ISO_TOLERANCE, df
    ws = designs["ws"].target
    # One-word registers: depth-1 regfiles that pay their own (small, nonzero) energy ...
    assert [ws.level(n).capacity_words for n in ("ifmap_rf", "weights_rf", "psum_rf")] == [1, 1, 1]
    assert 0 < ws.level("weights_rf").read_pj < rs.target.level("weights_rf").read_pj
    # ... and the RF area they free becomes buffer: much larger, dearer per access.
    assert (
        ws.level("global_buffer").capacity_words
        > 10 * rs.target.level("global_buffer").capacity_words
    )
    assert ws.level("global_buffer").read_pj > rs.target.level("global_buffer").read_pj
    assert abs(ws.level("global_buffer").network.hop_energy_pj - hop_pj()) < 1e-5


def test_isoarea_study_runs_and_writes_its_rows(tmp_path: Path) -> None:
    args = ["bench", "isoarea", "--out", str(tmp_path), "--layers", "FC8"]
    assert main([*args, "--dataflows", "ws,rs", "--time-limit", "0.5"]) == 0
    data = json.loads((tmp_path / "isoarea.json").read_text())
    assert [(r["layer"], r["dataflow"]) for r in data["layers"]] == [("FC8", "ws"), ("FC8", "rs")]
    assert {d["dataflow"] for d in data["designs"]} == {"ws", "rs"}
    assert data["summary"]["fc"]["ratio_to_rs"]["rs"] == 1.0
    assert all(r["energy_pj"] > 0 for r in data["layers"])
    assert (tmp_path / "isoarea.png").stat().st_size > 1000
    assert "paper, FC" in (tmp_path / "isoarea.md").read_text()
