"""``joule targets [NAME]``: list the bundled accelerator targets, or show one in full.

NAME may also be a target template (targets/templates/, or a YAML file with a
``template`` key): it is instantiated at its default parameters, or at those
given with ``--set KEY=VALUE``, and printed with its area per component and in
total (joule.hardware's area model).

Imports only :mod:`targets` and :mod:`joule.hardware` (no TVM), so it answers instantly.
"""

from __future__ import annotations

import argparse

from joule.errors import TargetError
from joule.hardware.template import DesignInstance
from joule.targets.loader import bundled_targets, load_target
from joule.targets.spec import StorageLevel, Target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "target",
        nargs="?",
        help="a bundled target name or a path to a target YAML file: print its details "
        "(a target template is instantiated and printed with its area)",
    )
    parser.add_argument(
        "--set",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (repeatable), e.g. --set mesh_x=16",
    )


def run(args: argparse.Namespace) -> int:
    from joule.hardware import is_template, load_template

    if args.target and is_template(args.target):
        instance = load_template(args.target).instantiate(_parse_params(args.params))
        print(describe(instance.target))
        print(describe_area(instance))
        return 0
    if args.params:
        raise TargetError(
            "--set applies to target templates only",
            where=f"target argument {args.target!r}",
            hint="give a template (e.g. eyeriss-template) or drop --set",
        )
    if args.target:
        print(describe(load_target(args.target)))
        return 0
    rows = [(t.name, _pes(t), f"{len(t.levels)} levels", t.description) for t in _bundled()]
    header = ("NAME", "PEs", "LEVELS", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)), row[3])
    return 0


def _parse_params(items: list[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise TargetError(
                f"--set {item!r} is not KEY=VALUE", where="--set", hint="e.g. --set mesh_x=16"
            )
        params[key.strip()] = value.strip()
    return params


def describe_area(instance: DesignInstance) -> str:
    """The area model's table: per component, per instance and in total, and the chip total."""
    lines = ["  area (joule.hardware area model, um^2):"]
    width = max(len(a.component) for a in instance.area)
    for a in instance.area:
        lines.append(
            f"    {a.component.ljust(width)}  {a.instances:5d} x {a.um2_each:12.1f} = "
            f"{a.um2_total / 1e6:9.4f} mm^2  ({a.model})"
        )
    lines.append(f"    {'total'.ljust(width)}  {instance.area_mm2:30.4f} mm^2")
    return "\n".join(lines)


def _bundled() -> list[Target]:
    return [load_target(name) for name in bundled_targets()]


def _pes(target: Target) -> str:
    inner = target.levels[-1]
    return f"{target.pes} ({inner.mesh_x}x{inner.mesh_y})"


def describe(target: Target) -> str:
    """Every field of a target, one level per block, for a reader checking the numbers."""
    lines = [
        f"{target.name}: {target.description}",
        f"  file        {target.source_file}",
        f"  sha256      {target.content_hash}",
        f"  technology  {target.technology or '-'}",
        f"  clock       {target.clock_hz / 1e6:g} MHz, words of {target.word_bits} bits",
        f"  PEs         {_pes(target)}",
        f"  MAC         {target.mac_energy_pj:g} pJ ({target.mac_energy_source})",
        "  levels (outermost first):",
    ]
    for i, lvl in enumerate(target.levels):
        lines.extend(_level_lines(target, i, lvl))
    if target.notes:
        lines.append(f"  notes: {target.notes}")
    return "\n".join(lines)


def _level_lines(target: Target, index: int, lvl: StorageLevel) -> list[str]:
    keeps = " ".join(r for r in ("input", "weight", "output") if r in lvl.keeps)
    if lvl.capacity_per_tensor:
        capacity = ", ".join(f"{role} {words}" for role, words in lvl.capacity_per_tensor)
    elif lvl.capacity_words is not None:
        shared = " shared" if len(lvl.keeps) > 1 else ""
        capacity = f"{lvl.capacity_words}{shared}"
    else:
        capacity = "unbounded"
    bandwidth = lvl.bandwidth_words_per_cycle
    out = [
        f"  [{index}] {lvl.name}: keeps {keeps}; {lvl.instances} instance(s) "
        f"({lvl.mesh_x}x{lvl.mesh_y}); capacity {capacity} words of {lvl.word_bits} bits",
        f"      pJ/word read {lvl.read_pj:g}, write {lvl.write_pj:g}, update {lvl.update_pj:g}; "
        f"bandwidth {'unlimited' if bandwidth is None else f'{bandwidth:g}'} words/cycle",
        f"      energy source: {lvl.energy_source}",
    ]
    c = lvl.constraints
    for label, dims in (
        ("temporal dims", c.temporal_dims),
        ("spatial X", c.spatial_x),
        ("spatial Y", c.spatial_y),
    ):
        if dims is not None:
            out.append(f"      {label}: {' '.join(_ordered(dims)) or '(none)'}")
    if c.permutation is not None:
        out.append(f"      permutation (outermost first): {' '.join(c.permutation)}")
    fan_x, fan_y = target.fanout(index)
    if (fan_x, fan_y) != (1, 1) or lvl.network.source:
        net = lvl.network
        out.append(
            f"      network below (fan-out {fan_x}x{fan_y}): "
            f"multicast {'yes' if net.multicast else 'no'}, "
            f"spatial reduction {'yes' if net.spatial_reduction else 'no'}, "
            f"{net.hop_energy_pj:g} pJ/hop ({net.source})"
        )
        if net.links is not None:
            out.append(
                f"      inter-PE links along {net.links.axis}: {net.links.energy_pj:g} pJ/word, "
                f"buffers charged {net.links.charge.replace('_', ' ')}"
            )
    if lvl.tensor_bits or lvl.block_bits:
        widths = ", ".join(f"{role} {bits} bits" for role, bits in lvl.tensor_bits)
        block = f"accesses of {lvl.block_bits or lvl.word_bits} bits"
        out.append(f"      {block}" + (f"; values: {widths}" if widths else ""))
    return out


def _ordered(dims: frozenset[str]) -> list[str]:
    order = "NKCPQRSG"
    return sorted(dims, key=order.index)
