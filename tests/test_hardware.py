"""joule.hardware: the eyeriss template reproduces targets/eyeriss.yaml's per-access
energies (within 5 %) and Accelergy's areas (within 10 %) per component, its scaling
laws move the right way, and `joule targets TEMPLATE` prints the area table."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from joule.cli import main
from joule.errors import TargetError
from joule.hardware import components, is_template, load_template
from joule.hardware.technology import AREA_SCALING, area_factor, energy_factor
from joule.targets import load_target

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "timeloop"
ART = REFERENCE / "runs" / "alexnet_conv3" / "rs_fixed_mapping_model" / "timeloop-model.ART.yaml"
ERT = REFERENCE / "runs" / "alexnet_conv3" / "rs_fixed_mapping_model" / "timeloop-model.ERT.yaml"
needs_shared = pytest.mark.skipif(not ART.is_file(), reason="../shared is absent")
ENERGY_TOLERANCE = 0.05
AREA_TOLERANCE = 0.10


@pytest.fixture(scope="module")
def default_instance():
    return load_template("eyeriss-template").instantiate()


@pytest.mark.parametrize("level", ["DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad"])
def test_template_energies_match_eyeriss_within_5_percent(default_instance, level) -> None:
    derived = default_instance.target.level(level)
    bundled = load_target("eyeriss").level(level)
    for action in ("read_pj", "write_pj", "update_pj"):
        ours, theirs = getattr(derived, action), getattr(bundled, action)
        assert abs(ours / theirs - 1) <= ENERGY_TOLERANCE, (level, action, ours, theirs)
    assert derived.capacity_words == bundled.capacity_words
    assert derived.instances == bundled.instances
    assert derived.word_bits == bundled.word_bits


def test_template_mac_energy_matches_eyeriss(default_instance) -> None:
    ours, theirs = default_instance.target.mac_energy_pj, load_target("eyeriss").mac_energy_pj
    assert abs(ours / theirs - 1) <= ENERGY_TOLERANCE


def test_template_target_has_eyeriss_mapspace(default_instance) -> None:
    """Same levels, keeps, fan-outs, constraints and networks: only the numbers are derived."""
    bundled = load_target("eyeriss")
    derived = default_instance.target
    assert [lvl.name for lvl in derived.levels] == [lvl.name for lvl in bundled.levels]
    for ours, theirs in zip(derived.levels, bundled.levels, strict=True):
        assert ours.keeps == theirs.keeps
        assert (ours.mesh_x, ours.mesh_y) == (theirs.mesh_x, theirs.mesh_y)
        assert ours.constraints == theirs.constraints
        assert ours.bandwidth_words_per_cycle == theirs.bandwidth_words_per_cycle
        assert ours.network.multicast == theirs.network.multicast
        assert ours.network.spatial_reduction == theirs.network.spatial_reduction
        assert ours.network.links == theirs.network.links


def _art() -> dict[str, float]:
    tables = yaml.safe_load(ART.read_text())["ART"]["tables"]
    return {t["name"].split(".")[1].split("[")[0]: float(t["area"]) for t in tables}


@needs_shared
@pytest.mark.parametrize(
    "component", ["shared_glb", "ifmap_spad", "weights_spad", "psum_spad", "mac", "DRAM"]
)
def test_template_areas_match_accelergy_art_within_10_percent(default_instance, component) -> None:
    art = _art()
    ours = {a.component: a for a in default_instance.area}[component]
    if art[component] == 0:
        assert ours.um2_each == 0
    else:
        assert abs(ours.um2_each / art[component] - 1) <= AREA_TOLERANCE, (
            component,
            ours.um2_each,
            art[component],
        )


@needs_shared
def test_template_energies_match_accelergy_ert_directly(default_instance) -> None:
    """Against the ERT file itself (per vector access / words per vector), not the copy."""
    tables = yaml.safe_load(ERT.read_text())["ERT"]["tables"]
    ert = {}
    for t in tables:
        name = t["name"].split(".")[1].split("[")[0]
        ert[name] = {a["name"]: float(a["energy"]) for a in t["actions"]}
    words = {"DRAM": 8, "shared_glb": 8, "ifmap_spad": 2, "weights_spad": 2, "psum_spad": 1}
    for level, block in words.items():
        lvl = default_instance.target.level(level)
        assert abs(lvl.read_pj * block / ert[level]["read"] - 1) <= ENERGY_TOLERANCE
        assert abs(lvl.write_pj * block / ert[level]["write"] - 1) <= ENERGY_TOLERANCE
    mac = default_instance.target.mac_energy_pj
    assert abs(mac / ert["mac"]["compute"] - 1) <= ENERGY_TOLERANCE


def test_default_total_area_is_the_sum_of_components(default_instance) -> None:
    total = sum(a.instances * a.um2_each for a in default_instance.area) / 1e6
    assert default_instance.area_mm2 == pytest.approx(total)
    assert 10 < default_instance.area_mm2 < 20  # 168 PEs with 192x16 b weight spads dominate


def test_scaling_laws_move_the_right_way() -> None:
    base = components.regfile(16, 64, 65)
    deeper = components.regfile(16, 256, 65)
    assert deeper.read_pj > base.read_pj and deeper.area_um2 == pytest.approx(4 * base.area_um2)
    small = components.sram(64, 16384, 65)
    big = components.sram(64, 4 * 16384, 65)
    # energy ~ capacity^0.5 (the address adder's small share grows only with log2(depth))
    assert big.read_pj / small.read_pj == pytest.approx(2.0, rel=0.01)
    assert big.area_um2 / small.area_um2 == pytest.approx(4.0)
    mac8, mac16 = components.intmac(8, 16, 65), components.intmac(16, 32, 65)
    mul8 = components.MAC_MUL_8X8_PJ
    assert mac16.read_pj == pytest.approx(4 * mul8 + 2 * components.MAC_ADD_16B_PJ)
    assert mac8.read_pj > components.intmac(8, 16, 45).read_pj
    assert components.dram("HBM2", 64).read_pj == pytest.approx(3.9 * 64)
    assert components.dram("LPDDR4", 64).read_pj == pytest.approx(512.0)


def test_node_scaling_is_stillmaker_baas() -> None:
    assert area_factor(65, 45) == pytest.approx(AREA_SCALING[2][3])
    assert area_factor(65, 65) == pytest.approx(1.0)
    assert energy_factor(65, 65) == pytest.approx(1.0)
    assert 0.5 < energy_factor(65, 45) < 1.0
    assert energy_factor(45, 65) == pytest.approx(1 / energy_factor(65, 45))


def test_parameters_reach_the_target() -> None:
    tpl = load_template("eyeriss-template")
    inst = tpl.instantiate({"mesh_x": 16, "mesh_y": 16, "glb_kib": 64, "word_bits": 16})
    t = inst.target
    assert t.pes == 256 and t.word_bits == 16
    assert t.level("shared_glb").capacity_words == 64 * 1024 * 8 // 16
    assert t.level("psum_spad").word_bits == 32
    assert t.content_hash != tpl.instantiate().target.content_hash
    assert t.name == "eyeriss-template(mesh_x=16,mesh_y=16,glb_kib=64,word_bits=16)"
    # the same parameters give the same target, byte for byte
    again = tpl.instantiate({"word_bits": "16", "glb_kib": 64, "mesh_y": 16, "mesh_x": 16})
    assert again.target.content_hash == t.content_hash


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"nope": 1}, "unknown template parameter"),
        ({"dram": "SDRAM9"}, "unknown DRAM kind"),
        ({"technology_nm": 3}, "outside the scaling tables"),
        ({"mesh_x": "a"}, "must be an integer"),
        ({"mesh_x": 0}, "must be"),
    ],
)
def test_bad_parameters_are_target_errors(params, message) -> None:
    with pytest.raises(TargetError, match=message):
        load_template("eyeriss-template").instantiate(params)


def test_is_template() -> None:
    assert is_template("eyeriss-template")
    assert not is_template("eyeriss")


def test_cli_targets_prints_area_for_a_template(capsys) -> None:
    assert main(["targets", "eyeriss-template", "--set", "mesh_x=16"]) == 0
    out = capsys.readouterr().out
    assert "eyeriss-template(mesh_x=16)" in out
    assert "area (joule.hardware area model" in out
    for component in ("mac", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad", "total"):
        assert component in out
    assert "192 x" in out  # 16 x 12 PEs


def test_cli_targets_keeps_plain_targets_unchanged(capsys) -> None:
    assert main(["targets", "eyeriss"]) == 0
    assert "area" not in capsys.readouterr().out
    assert main(["targets", "eyeriss", "--set", "mesh_x=2"]) == 2
