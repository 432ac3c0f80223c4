"""Every counter timeloop-model printed for Joule's exported mappings, with links on and off.

../shared/reference/timeloop/joule-exports holds 98 layers (alexnet, resnet18,
vgg16, mobilenet_v2) that timeloop-model scored: ``timeloop-model.stats.txt``
with its default inter-PE link transfers, and for the 25 layers where links
change anything ``timeloop-model.nolink.stats.txt`` with
``TIMELOOP_DISABLE_LINK_TRANSFERS=1``. Joule's model on ``eyeriss`` (links on)
and on ``eyeriss`` without its ``links`` option must give every read, fill and
update of every level and tensor exactly, and forward words on exactly those 25
layers. Skipped without ../shared.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from joule.cost import CostResult, evaluate
from joule.targets import load_target
from joule.targets.spec import Target
from joule.timeloop.mapping import mapping_levels_from_yaml, to_joule
from joule.timeloop.problem import problem_from_dict
from joule.timeloop.stats import read_stats

EXPORTS = (
    Path(__file__).resolve().parents[2] / "shared" / "reference" / "timeloop" / "joule-exports"
)
pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not EXPORTS.is_dir(), reason="../shared is absent"),
]
LINKED_LAYERS = 25  # layers with a timeloop-model.nolink.stats.txt


def _layers() -> list[Path]:
    return sorted(p.parent for p in EXPORTS.glob("*/*/parsed-processed-input.yaml"))


def _without_links(target: Target) -> Target:
    levels = tuple(
        dataclasses.replace(lvl, network=dataclasses.replace(lvl.network, links=None))
        for lvl in target.levels
    )
    return dataclasses.replace(target, levels=levels)


def _differences(result: CostResult, stats: dict) -> list[str]:
    off = []
    for level, roles in stats["levels"].items():
        for role, counts in roles.items():
            ours = result.accesses[level][role]
            for kind in ("reads", "fills", "updates"):
                if kind in counts and getattr(ours, kind) != counts[kind]:
                    off.append(f"{level}.{role}.{kind}: {getattr(ours, kind)} != {counts[kind]}")
    return off


def test_every_counter_with_links_on_and_off() -> None:
    eyeriss = load_target("eyeriss")
    plain = _without_links(eyeriss)
    layers = _layers()
    assert len(layers) == 98
    linked = 0
    for folder in layers:
        ran = yaml.safe_load((folder / "parsed-processed-input.yaml").read_text())
        dims = ran["problem"]["shape"]["dimensions"]
        # Convolutions read in Joule's names (M -> K); a Gemm keeps its own M, N, K.
        names = None if "R" in dims else {d: d for d in dims}
        nest = problem_from_dict(ran, names=names, name=folder.name)
        mapping = to_joule(mapping_levels_from_yaml(ran, str(folder), names), eyeriss, nest)
        nolink_file = folder / "timeloop-model.nolink.stats.txt"
        with_links = read_stats(folder / "timeloop-model.stats.txt")
        without = read_stats(nolink_file) if nolink_file.is_file() else with_links
        on, off = evaluate(nest, eyeriss, mapping), evaluate(nest, plain, mapping)
        assert not _differences(on, with_links), (folder, _differences(on, with_links))
        assert not _differences(off, without), (folder, _differences(off, without))
        assert on.energy_pj == pytest.approx(with_links["energy_pj"], rel=1e-5), folder
        assert off.energy_pj == pytest.approx(without["energy_pj"], rel=1e-5), folder
        assert bool(on.link_words) == nolink_file.is_file(), folder
        linked += bool(on.link_words)
    assert linked == LINKED_LAYERS
