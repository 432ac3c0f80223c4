"""Optional: the real torchvision exports in ../shared/models lower to the published MACs."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import pytest
from joule.lower import lower_model

SHARED = Path(__file__).resolve().parents[2] / "shared" / "models"


def _readme_macs() -> dict[str, int]:
    """file name -> MACs, from the table in ../shared/models/README.md."""
    rows = {}
    for line in (SHARED / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0].endswith(".onnx"):
            rows[cells[0]] = int(re.sub(r"[^\d]", "", cells[-1]))
    return rows


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/models is absent")
def test_shared_models_lower_to_readme_macs_one_loopnest_per_mac_node() -> None:
    table = _readme_macs()
    assert table, "no MAC table found in ../shared/models/README.md"
    for file, macs in table.items():
        network = lower_model(SHARED / file)
        assert network.total_macs == macs, file
        model = onnx.load(str(SHARED / file), load_external_data=False)
        mac_nodes = [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul")]
        assert [n.name for n in network.loopnests] == mac_nodes, file
        assert all(n.onnx_node == n.name for n in network.loopnests), file
