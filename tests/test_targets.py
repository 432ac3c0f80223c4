"""Accelerator targets: bundled files load as documented; bad files fail with one clear error."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from joule.cli import main
from joule.errors import TargetError
from joule.targets.loader import bundled_targets, load_target

REPO = Path(__file__).resolve().parents[1]
SHARED_ERT = Path(
    "/work/shared/reference/timeloop/runs/alexnet_conv3/timeloop-mapper.ERT_summary.yaml"
)
ALL_ROLES = frozenset({"input", "weight", "output"})


# --- the bundled targets -------------------------------------------------------------


def test_bundled_targets_are_the_four_documented_ones() -> None:
    assert {"eyeriss", "eyeriss-isca16", "tpu-ws", "shidiannao-os"} <= set(bundled_targets())


@pytest.mark.parametrize("name", bundled_targets())
def test_every_bundled_target_loads_with_sources_and_its_file_name(name: str) -> None:
    target = load_target(name)
    assert target.name == name
    assert Path(target.source_file).name == f"{name}.yaml"
    assert target.content_hash == hashlib.sha256(Path(target.source_file).read_bytes()).hexdigest()
    assert target.levels[0].keeps == ALL_ROLES and target.levels[0].capacity_words is None
    assert target.mac_energy_source and target.technology
    for i, lvl in enumerate(target.levels):
        assert lvl.energy_source, lvl.name
        if target.fanout(i) != (1, 1):
            assert lvl.network.source, lvl.name
    assert "leakage is ignored" in target.notes.lower()


@pytest.mark.parametrize("name", bundled_targets())
def test_every_bundled_target_holds_a_word_of_each_tensor_at_every_level(name: str) -> None:
    """The all-at-DRAM mapping fits, so every layer has at least one mapping."""
    for lvl in load_target(name).levels[1:]:
        for role in lvl.keeps:
            words = lvl.capacity_for(role) or lvl.capacity_words
            assert words is not None and words >= 1


def test_eyeriss_matches_timeloop_eyeriss_like_levels_and_sizes() -> None:
    t = load_target("eyeriss")
    assert [lvl.name for lvl in t.levels] == [
        "DRAM",
        "shared_glb",
        "ifmap_spad",
        "weights_spad",
        "psum_spad",
    ]
    dram, glb, ifmap, weights, psum = t.levels
    assert glb.capacity_words == 131072 and glb.keeps == {"input", "output"}
    assert glb.bandwidth_words_per_cycle == 16
    assert (ifmap.capacity_words, ifmap.keeps) == (24, {"input"})
    assert (weights.capacity_words, weights.keeps) == (384, {"weight"})
    assert (psum.capacity_words, psum.keeps) == (16, {"output"})
    for spad in (ifmap, weights, psum):
        assert (spad.instances, spad.mesh_x, spad.mesh_y) == (168, 14, 12)
        assert spad.bandwidth_words_per_cycle == 2
    assert t.pes == 168 and t.fanout(1) == (14, 12)
    assert [t.fanout(i) for i in (0, 2, 3, 4)] == [(1, 1)] * 4
    assert (t.word_bits, psum.word_bits, t.clock_hz) == (8, 16, 1e9)


def test_eyeriss_per_word_energies_are_the_accelergy_ert_divided_by_block_size() -> None:
    t = load_target("eyeriss")
    expected = {  # level: (read, write, update) per word, from the ERT
        "DRAM": (512 / 8, 512 / 8, 512 / 8),
        "shared_glb": (59.4555 / 8, 49.7147 / 8, 49.7147 / 8),
        "ifmap_spad": (0.497023 / 2, 0.43577 / 2, 0.43577 / 2),
        "weights_spad": (4.73566 / 2, 4.50962 / 2, 4.50962 / 2),
        "psum_spad": (0.613343, 0.536681, 0.536681),
    }
    for name, energies in expected.items():
        lvl = t.level(name)
        assert (lvl.read_pj, lvl.write_pj, lvl.update_pj) == pytest.approx(energies, rel=1e-12)
    assert t.mac_energy_pj == 1.40883


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_ERT.exists(), reason="shared/reference is absent")
def test_eyeriss_energies_equal_the_reference_ert_file() -> None:
    ert = yaml.safe_load(SHARED_ERT.read_text())["ERT_summary"]["table_summary"]
    blocks = {"DRAM": 8, "shared_glb": 8, "ifmap_spad": 2, "weights_spad": 2, "psum_spad": 1}
    t = load_target("eyeriss")
    for entry in ert:
        name = entry["name"].split(".")[1].split("[")[0]
        actions = {a["name"]: a["energy"] for a in entry["actions"]}
        if name == "mac":
            assert t.mac_energy_pj == actions["compute"]
            continue
        lvl = t.level(name)
        per_word = [actions[k] / blocks[name] for k in ("read", "write", "update")]
        assert [lvl.read_pj, lvl.write_pj, lvl.update_pj] == pytest.approx(per_word, rel=1e-12)


def test_eyeriss_mapping_constraints_are_the_arch_yaml_ones() -> None:
    t = load_target("eyeriss")
    glb = t.level("shared_glb").constraints
    assert glb.spatial_x == {"Q", "K", "G"} and glb.spatial_y == {"S", "C", "K", "G"}
    assert t.level("ifmap_spad").constraints.temporal_dims == {"G"}
    weights = t.level("weights_spad").constraints
    assert weights.temporal_dims == {"C", "R", "G"}
    assert weights.permutation == ("R", "C", "S", "Q", "P", "K", "N")  # NMPQSCR reversed
    assert t.level("psum_spad").constraints.temporal_dims == {"K", "G"}


def test_eyeriss_network_multicasts_and_reduces_at_zero_energy() -> None:
    t = load_target("eyeriss")
    net = t.level("shared_glb").network
    assert net.multicast and net.spatial_reduction and net.hop_energy_pj == 0.0
    assert t.level("DRAM").network.multicast


def test_eyeriss_isca16_is_the_papers_chip_with_normalised_costs() -> None:
    t = load_target("eyeriss-isca16")
    dram, glb, rf = t.levels
    assert (dram.read_pj, glb.read_pj, rf.read_pj, t.mac_energy_pj) == (200, 6, 1, 1)
    assert glb.capacity_words == 108 * 1024 // 2
    assert rf.capacity_for("input") == 12 and rf.capacity_for("weight") == 224
    assert rf.capacity_for("output") == 24 and rf.capacity_words is None
    assert (t.pes, t.fanout(1)) == (168, (14, 12))
    assert glb.network.hop_energy_pj == 2.0 and glb.network.spatial_reduction
    assert (t.clock_hz, t.word_bits) == (200e6, 16)


def test_tpu_ws_keeps_one_weight_per_pe_and_reduces_down_columns() -> None:
    t = load_target("tpu-ws")
    pe = t.levels[-1]
    assert (t.pes, pe.mesh_x, pe.mesh_y) == (256, 16, 16)
    assert pe.capacity_for("weight") == 1
    assert t.fanout(t.levels.index(t.level("weight_fifo"))) == (16, 1)
    acc_index = t.levels.index(t.level("accumulators"))
    assert t.fanout(acc_index) == (1, 16)
    assert t.level("accumulators").network.spatial_reduction
    assert t.level("accumulators").constraints.temporal_dims == {"N", "P", "Q"}
    assert t.level("unified_buffer").keeps == {"input", "output"}


def test_shidiannao_os_accumulates_one_output_per_pe() -> None:
    t = load_target("shidiannao-os")
    acc = t.level("pe_accumulator")
    assert (t.pes, acc.mesh_x, acc.mesh_y) == (64, 8, 8)
    assert acc.keeps == {"output"} and acc.capacity_words == 1
    assert acc.constraints.temporal_dims == {"C", "R", "S"}
    buffers = t.level("buffers")
    assert dict(buffers.capacity_per_tensor) == {"input": 32768, "weight": 65536, "output": 32768}
    assert buffers.network.multicast and not buffers.network.spatial_reduction


def test_loading_is_cached_and_an_edited_file_is_reread(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    _write(path, BASE)
    first = load_target(path)
    assert load_target(str(path)) is first
    changed = copy.deepcopy(BASE)
    changed["mac"]["energy_pj"] = 2.0
    _write(path, changed)
    second = load_target(path)
    assert second.mac_energy_pj == 2.0 and second.content_hash != first.content_hash


def test_a_path_target_records_its_file_and_hash(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    _write(path, BASE)
    t = load_target(path)
    assert t.source_file == str(path.resolve())
    assert t.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert t.levels[2].mesh_x == 2 and t.fanout(1) == (2, 2)


def test_exponent_floats_without_a_dot_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(BASE, sort_keys=False).replace("1000000000.0", "1e9"))
    assert "clock_hz: 1e9" in path.read_text()
    assert load_target(path).clock_hz == 1e9


# --- bad files -------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "name": "tiny",
    "description": "a tiny test chip",
    "word_bits": 16,
    "clock_hz": 1.0e9,
    "mac": {"energy_pj": 1.0, "source": "test"},
    "levels": [
        {
            "name": "DRAM",
            "keeps": ["input", "weight", "output"],
            "read_pj": 100.0,
            "write_pj": 100.0,
            "update_pj": 100.0,
            "energy_source": "test",
        },
        {
            "name": "buffer",
            "keeps": ["input", "weight", "output"],
            "capacity_words": 1024,
            "read_pj": 6.0,
            "write_pj": 6.0,
            "update_pj": 6.0,
            "energy_source": "test",
            "constraints": {"spatial_x": ["K"], "spatial_y": ["C"]},
        },
        {
            "name": "rf",
            "keeps": ["input", "weight", "output"],
            "capacity_per_tensor": {"input": 4, "weight": 8, "output": 2},
            "instances": 4,
            "mesh_x": 2,
            "mesh_y": 2,
            "read_pj": 1.0,
            "write_pj": 1.0,
            "update_pj": 1.0,
            "energy_source": "test",
        },
    ],
    "networks": {
        "buffer": {
            "multicast": True,
            "spatial_reduction": True,
            "hop_energy_pj": 2.0,
            "source": "test",
        }
    },
}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _set(path: str, value: Any) -> Any:
    """A mutation of BASE: set (or with value DELETE, remove) one field by dotted path."""

    def mutate(data: dict[str, Any]) -> None:
        keys = [int(k) if k.isdigit() else k for k in path.split(".")]
        node = data
        for key in keys[:-1]:
            node = node[key]
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value

    return mutate


DELETE = object()


def _mesh_1x2_above_4x1(data: dict[str, Any]) -> None:
    """Instances divide (2 -> 4) but the Y axis shrinks from 2 to 1."""
    data["levels"][1].update(instances=2, mesh_x=1, mesh_y=2, capacity_words=8)
    data["levels"][2].update(instances=4, mesh_x=4, mesh_y=1)


BAD_FILES = [
    # id, mutation, field named, rule stated
    ("missing-name", _set("name", DELETE), "name", "is missing"),
    (
        "negative-capacity",
        _set("levels.1.capacity_words", -4),
        "levels[1].capacity_words",
        "must be positive",
    ),
    (
        "zero-capacity",
        _set("levels.1.capacity_words", 0),
        "levels[1].capacity_words",
        "must be positive",
    ),
    (
        "capacity-not-int",
        _set("levels.1.capacity_words", "lots"),
        "levels[1].capacity_words",
        "must be an integer",
    ),
    (
        "capacity-float",
        _set("levels.1.capacity_words", 12.5),
        "levels[1].capacity_words",
        "must be an integer",
    ),
    (
        "zero-per-tensor",
        _set("levels.2.capacity_per_tensor.weight", 0),
        "levels[2].capacity_per_tensor.weight",
        "must be positive",
    ),
    (
        "per-tensor-not-kept",
        _set("levels.2.keeps", ["input", "weight"]),
        "levels[2].capacity_per_tensor.output",
        "not a tensor this level keeps",
    ),
    (
        "both-capacities",
        _set("levels.2.capacity_words", 8),
        "levels[2].capacity_per_tensor",
        "cannot be given together",
    ),
    (
        "inner-unbounded",
        _set("levels.1.capacity_words", DELETE),
        "levels[1].capacity_words",
        "is missing",
    ),
    ("zero-instances", _set("levels.2.instances", 0), "levels[2].instances", "must be positive"),
    (
        "negative-instances",
        _set("levels.2.instances", -168),
        "levels[2].instances",
        "must be positive",
    ),
    (
        "unknown-role",
        _set("levels.2.keeps", ["input", "psum", "output"]),
        "levels[2].keeps[1]",
        "not a known tensor role",
    ),
    ("repeated-role", _set("levels.1.keeps", ["input", "input"]), "levels[1].keeps[1]", "repeats"),
    ("empty-keeps", _set("levels.1.keeps", []), "levels[1].keeps", "at least one tensor"),
    (
        "dram-bypasses",
        _set("levels.0.keeps", ["input", "weight"]),
        "levels[0].keeps",
        "every tensor at the outermost level",
    ),
    (
        "mesh-mismatch",
        _set("levels.2.mesh_x", 3),
        "levels[2].instances",
        "must equal mesh_x * mesh_y",
    ),
    (
        "instances-not-multiple",
        _set("levels.1.instances", 3),
        "levels[2].instances",
        "must be a multiple",
    ),
    ("mesh-not-multiple", _mesh_1x2_above_4x1, "levels[2].mesh_y", "must be a multiple"),
    (
        "network-unknown-level",
        _set("networks.bufer", BASE["networks"]["buffer"]),
        "networks.bufer",
        "names no level",
    ),
    (
        "network-below-innermost",
        _set("networks.rf", BASE["networks"]["buffer"]),
        "networks.rf",
        "innermost level",
    ),
    ("network-missing", _set("networks", DELETE), "networks.buffer", "is missing"),
    (
        "network-bad-bool",
        _set("networks.buffer.multicast", "sometimes"),
        "networks.buffer.multicast",
        "must be true or false",
    ),
    (
        "network-missing-source",
        _set("networks.buffer.source", DELETE),
        "networks.buffer.source",
        "is missing",
    ),
    (
        "unknown-level-key",
        _set("levels.1.capacity_word", 5),
        "levels[1].capacity_word",
        "is not a known key",
    ),
    ("unknown-top-key", _set("levls", []), "levls", "is not a known key"),
    (
        "unknown-network-key",
        _set("networks.buffer.hop_pj", 1.0),
        "networks.buffer.hop_pj",
        "is not a known key",
    ),
    (
        "energy-wrong-type",
        _set("levels.1.read_pj", "cheap"),
        "levels[1].read_pj",
        "must be a number",
    ),
    ("energy-bool", _set("levels.1.write_pj", True), "levels[1].write_pj", "must be a number"),
    ("energy-negative", _set("levels.1.read_pj", -1.0), "levels[1].read_pj", "must be >= 0"),
    (
        "update-missing-for-output",
        _set("levels.1.update_pj", DELETE),
        "levels[1].update_pj",
        "is missing",
    ),
    (
        "source-missing",
        _set("levels.2.energy_source", DELETE),
        "levels[2].energy_source",
        "is missing",
    ),
    (
        "bandwidth-zero",
        _set("levels.1.bandwidth_words_per_cycle", 0),
        "levels[1].bandwidth_words_per_cycle",
        "must be positive",
    ),
    ("clock-zero", _set("clock_hz", 0), "clock_hz", "must be positive"),
    ("mac-missing", _set("mac", DELETE), "mac", "is missing"),
    ("mac-energy-string", _set("mac.energy_pj", "1 pJ"), "mac.energy_pj", "must be a number"),
    ("levels-empty", _set("levels", []), "levels", "non-empty list"),
    ("level-not-mapping", _set("levels.1", "buffer"), "levels[1]", "must be a mapping"),
    (
        "duplicate-level-name",
        _set("levels.2.name", "buffer"),
        "levels[2].name",
        "repeats the level name",
    ),
    (
        "unknown-dim",
        _set("levels.1.constraints.spatial_x", ["M"]),
        "levels[1].constraints.spatial_x[0]",
        "not a known dim",
    ),
    (
        "permutation-repeats",
        _set("levels.2.constraints", {"permutation": ["K", "C", "K"]}),
        "levels[2].constraints.permutation[2]",
        "repeats",
    ),
    (
        "spatial-without-fanout",
        _set("levels.2.constraints", {"spatial_x": ["K"]}),
        "levels[2].constraints.spatial_x",
        "no fan-out",
    ),
    ("outermost-instances", _set("levels.0.instances", 2), "levels[0].instances", "must be 1"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "rule"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_target_file_names_file_field_and_rule(
    tmp_path: Path, mutate: Any, field: str, rule: str
) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    path = tmp_path / "bad.yaml"
    _write(path, data)
    with pytest.raises(TargetError) as info:
        load_target(path)
    err = info.value
    assert str(path) in err.where
    assert f"field {field}" in err.where
    assert err.what.startswith(f"{field} ") and rule in err.what, err.what


@pytest.mark.parametrize(
    ("text", "where", "rule"),
    [
        ("name: tiny\nlevels: [unclosed\n", "line 3", "malformed YAML"),
        ("name: tiny\n  bad: indent\n", "line 2", "malformed YAML"),
        ("", "(top level)", "is empty"),
        ("- just\n- a list\n", "(top level)", "must be a mapping"),
        ("name: a\ndescription: b\nname: c\n", "line 3, field name", "given twice"),
    ],
    ids=["unclosed", "indent", "empty", "list", "duplicate-key"],
)
def test_malformed_yaml_is_one_target_error_with_file_and_line(
    tmp_path: Path, text: str, where: str, rule: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(TargetError) as info:
        load_target(path)
    assert str(path) in info.value.where and where in info.value.where
    assert rule in info.value.what


def test_error_points_at_the_line_of_the_bad_field(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["levels"][1]["capacity_words"] = -4
    path = tmp_path / "bad.yaml"
    _write(path, data)
    line = 1 + path.read_text().splitlines().index("  capacity_words: -4")
    with pytest.raises(TargetError, match="capacity_words") as info:
        load_target(path)
    assert f"line {line}," in info.value.where


def test_unknown_key_suggests_the_close_known_one(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["levels"][1]["bandwith_words_per_cycle"] = 4
    path = tmp_path / "typo.yaml"
    _write(path, data)
    with pytest.raises(TargetError) as info:
        load_target(path)
    assert "bandwidth_words_per_cycle" in info.value.hint


def test_unknown_name_and_missing_path_are_target_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="unknown target 'no-such-chip'") as info:
        load_target("no-such-chip")
    assert "eyeriss" in info.value.hint
    with pytest.raises(TargetError, match="does not exist"):
        load_target(tmp_path / "missing.yaml")


# --- the CLI ---------------------------------------------------------------------------


def test_joule_targets_lists_each_bundled_target_on_one_line(capsys: Any) -> None:
    assert main(["targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["NAME", "PEs", "LEVELS", "DESCRIPTION"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(bundled_targets())
    assert "168 (14x12)" in rows["eyeriss"] and "5 levels" in rows["eyeriss"]
    assert "Timeloop/Accelergy eyeriss_like" in rows["eyeriss"]
    assert "256 (16x16)" in rows["tpu-ws"] and "64 (8x8)" in rows["shidiannao-os"]


def test_joule_targets_name_prints_levels_energies_and_sources(capsys: Any) -> None:
    assert main(["targets", "eyeriss"]) == 0
    out = capsys.readouterr().out
    for text in ("shared_glb", "psum_spad", "read 0.613343", "fan-out 14x12", "Accelergy ERT"):
        assert text in out
    assert "inter-PE links along Y: 0 pJ/word, buffers charged timeloop" in out
    assert "accesses of 64 bits" in out


def test_joule_targets_with_a_bad_file_exits_2_without_traceback(
    tmp_path: Path, capsys: Any
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [oops\n")
    assert main(["targets", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: malformed YAML") and str(path) in err
    assert "Traceback" not in err


def test_joule_targets_process_exits_2_and_never_imports_tvm(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["levels"][2]["instances"] = 0
    path = tmp_path / "bad.yaml"
    _write(path, data)
    code = (
        "import sys; from joule.cli import main; rc = main(['targets', sys.argv[1]]); "
        "assert 'tvm' not in sys.modules; sys.exit(rc)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO
    )
    assert proc.returncode == 2, proc.stderr
    assert "levels[2].instances must be positive" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_readme_example_target_loads(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Targets") :]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "mychip.yaml"
    path.write_text(example)
    t = load_target(path)
    assert (t.name, t.pes, t.fanout(1)) == ("mychip", 168, (14, 12))
    assert t.level("rf").constraints.permutation == ("R", "C", "K")
