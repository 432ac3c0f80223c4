"""``joule bench precision``'s energy side: each layer mapped at its own precision.

At the target's own widths (w8a8 on eyeriss) the per-layer energies are exactly
those ``compile_model`` reports for the trained digits CNN; narrower widths cost
less; a layer's outputs take the next layer's activation width. The full bench
(accuracy of 12 configurations on 5 seeds and the search) runs with -m slow.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from joule import accuracy  # noqa: E402
from joule.bench.precision import LayerEnergies, run  # noqa: E402
from joule.driver import compile_model  # noqa: E402
from joule.targets import load_target  # noqa: E402
from joule.targets.precision import Precision  # noqa: E402

TIME_LIMIT = 0.3


@pytest.fixture(scope="module")
def energies() -> LayerEnergies:
    return LayerEnergies(load_target("eyeriss"), TIME_LIMIT)


def test_own_widths_give_the_compilers_energies(energies: LayerEnergies) -> None:
    native = {layer: (8, 8) for layer in energies.order}
    schedule = compile_model(
        accuracy.float_model_path(), "eyeriss", time_limit=TIME_LIMIT, workers=1
    )
    per_layer = {layer.nest.name: layer.cost.energy_pj for layer in schedule.layers}
    for layer, precision in energies.precisions(native).items():
        assert energies.layer(layer, precision)["energy_pj"] == pytest.approx(per_layer[layer])
    assert energies.total(native)["energy_pj"] == pytest.approx(sum(per_layer.values()))


def test_outputs_take_the_next_layers_width_and_narrow_is_cheaper(
    energies: LayerEnergies,
) -> None:
    bits = dict(zip(energies.order, [(4, 8), (8, 2), (8, 8), (2, 4)], strict=True))
    chosen = energies.precisions(bits)
    assert chosen["conv1"] == Precision(weight=4, input=8, output=2)
    assert chosen["fc2"] == Precision(weight=2, input=4, output=4)
    w8a8 = energies.total({layer: (8, 8) for layer in energies.order})["energy_pj"]
    w4a4 = energies.total({layer: (4, 4) for layer in energies.order})["energy_pj"]
    assert w4a4 < 0.7 * w8a8


@pytest.mark.slow
def test_the_whole_bench_writes_its_table_plot_and_search(tmp_path) -> None:  # noqa: ANN001
    from joule.bench.common import BenchConfig

    data = run(tmp_path, BenchConfig(time_limit_s=TIME_LIMIT))
    assert len(data["rows"]) >= 9
    assert (tmp_path / "precision.png").stat().st_size > 10_000
    assert any(row["front"] for row in data["rows"])
    assert data["mixed_vs_w8a8"] > 1.0
