"""Timeloop problems and mappings read as Joule LoopNests and Mappings, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from joule.errors import IRParseError, JouleError, MappingError
from joule.mapping import LevelLoops, Loop, Mapping
from joule.targets.loader import load_target
from joule.timeloop import load_mapping, load_problem, problem_from_dict

DATA = Path(__file__).resolve().parent / "data" / "timeloop"


@pytest.fixture(scope="module")
def eyeriss():  # noqa: ANN201 - Target
    return load_target("eyeriss")


def test_problem_renames_m_to_k_and_has_no_padding() -> None:
    nest = load_problem(DATA / "problems" / "alexnet_conv1.yaml")
    assert nest.extents == {"N": 1, "K": 96, "C": 3, "P": 55, "Q": 55, "R": 11, "S": 11}
    assert nest.reduction == {"C", "R", "S"}
    # (55 - 1) * 4 + 11 = 227: Timeloop's input extent, no padding.
    assert nest.tensor("input").shape == (1, 3, 227, 227)
    assert str(nest.tensor("input").projection[2]) == "R + 4*P"
    assert nest.macs == 105_415_200


def test_problem_without_shape_gets_the_cnn_layer_shape_and_dilation() -> None:
    data = yaml.safe_load((DATA / "problems" / "alexnet_conv2.yaml").read_text())
    full = problem_from_dict(data)
    del data["problem"]["shape"]
    assert problem_from_dict(data).signature() == full.signature()
    data["problem"]["instance"].update(Hdilation=2, Wdilation=2, Hstride=1, Wstride=1)
    dilated = problem_from_dict(data)
    p, r = dilated.extents["P"], dilated.extents["R"]
    assert dilated.tensor("input").shape[2] == (p - 1) * 1 + (r - 1) * 2 + 1


def test_mapper_yaml_and_printed_map_give_the_same_mapping(tmp_path: Path, eyeriss) -> None:  # noqa: ANN001
    nest = load_problem(DATA / "problems" / "alexnet_conv1.yaml")
    from_yaml = load_mapping(DATA / "mappings" / "alexnet_conv1.map.yaml", eyeriss, nest)
    # map.txt of that run, written out: permutation SMQCRNP is innermost first.
    text = """DRAM [ Weights:34848 (34848) Inputs:154587 (154587) Outputs:290400 (290400) ]
-------
| for Q in [0:5)
|   for M in [0:4)
|     for S in [0:11)

shared_glb [ Inputs:27921 (27921) Outputs:14520 (14520) ]
|       for C in [0:3)
|         for P in [0:55)

inter_PE_column_spatial [ ]
|           for Q in [0:11) (Spatial-X)

inter_PE_spatial [ ]
|             for M in [0:12) (Spatial-Y)

ifmap_spad [ Inputs:11 (11) ]
weights_spad [ Weights:22 (22) ]
|               for R in [0:11)

psum_spad [ Outputs:2 (2) ]
|                 for M in [0:2)
|                   << Compute >>
"""
    expected = Mapping(
        (
            LevelLoops("DRAM", (Loop("Q", 5), Loop("K", 4), Loop("S", 11))),
            LevelLoops(
                "shared_glb",
                (Loop("C", 3), Loop("P", 55)),
                (Loop("Q", 11, "X"), Loop("K", 12, "Y")),
            ),
            LevelLoops("ifmap_spad"),
            LevelLoops("weights_spad", (Loop("R", 11),)),
            LevelLoops("psum_spad", (Loop("K", 2),)),
        )
    )
    assert from_yaml == expected
    assert load_mapping(_write(tmp_path, "conv1.map.txt", text), eyeriss, nest) == expected


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text", "error", "words"),
    [
        ("m.yaml", "mapping: [", MappingError, "not valid YAML"),
        ("m.yaml", "foo: 1\n", MappingError, "no top-level 'mapping:'"),
        (
            "m.yaml",
            "mapping:\n- {target: shared_glb, type: datatype, keep: [Weights, Inputs]}\n",
            MappingError,
            "keeps",
        ),
        (
            "m.yaml",
            "mapping:\n- {target: DRAM, type: temporal, factors: C0 M1, permutation: CM}\n",
            MappingError,
            "factor 0",
        ),
        (
            "m.yaml",
            "mapping:\n- {target: L2_buffer, type: temporal, factors: C2, permutation: C}\n",
            MappingError,
            "no such level",
        ),
        ("m.map.txt", "DRAM [ ]\n| while true\n", MappingError, "cannot read line 2"),
    ],
)
def test_unreadable_mappings_raise_a_clear_mapping_error(
    tmp_path: Path,
    eyeriss,  # noqa: ANN001
    name: str,
    text: str,
    error: type[JouleError],
    words: str,
) -> None:
    with pytest.raises(error, match=words) as info:
        load_mapping(_write(tmp_path, name, text), eyeriss)
    assert str(tmp_path) in info.value.message()


def test_missing_files_and_bad_problems_raise_joule_errors(tmp_path: Path, eyeriss) -> None:  # noqa: ANN001
    with pytest.raises(MappingError, match="cannot read Timeloop mapping"):
        load_mapping(tmp_path / "absent.yaml", eyeriss)
    with pytest.raises(IRParseError, match="cannot read Timeloop problem"):
        load_problem(tmp_path / "absent.yaml")
    with pytest.raises(IRParseError, match="no top-level 'problem:'"):
        load_problem(_write(tmp_path, "p.yaml", "mapping: []\n"))
    with pytest.raises(IRParseError, match="no extent for dim Q"):
        load_problem(
            _write(
                tmp_path, "p.yaml", "problem: {instance: {C: 1, M: 1, R: 1, S: 1, N: 1, P: 1}}\n"
            )
        )
