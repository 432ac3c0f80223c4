"""The target file format: turns a parsed YAML document into a checked :class:`Target`.

Every rule of the format (README.md, "Targets") is enforced here, so the cost
model and the mapper can trust a Target without re-checking it: positive
capacities and instances, a mesh that multiplies to the instances, fan-outs that
divide evenly, known tensor roles and dim names, networks on real levels.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from joule.errors import JouleError
from joule.ir.loopnest import ROLES, Role
from joule.targets.fields import Fields, Section
from joule.targets.spec import LevelConstraints, Links, Network, StorageLevel, Target
from joule.targets.yaml_doc import YamlDoc

DIMS: tuple[str, ...] = ("N", "K", "C", "P", "Q", "R", "S", "G")
TOP_KEYS = (
    "name",
    "description",
    "technology",
    "notes",
    "word_bits",
    "clock_hz",
    "mac",
    "levels",
    "networks",
    "precision",
)
MAC_KEYS = ("energy_pj", "source")
LEVEL_KEYS = (
    "name",
    "keeps",
    "capacity_words",
    "capacity_per_tensor",
    "instances",
    "mesh_x",
    "mesh_y",
    "read_pj",
    "write_pj",
    "update_pj",
    "energy_source",
    "bandwidth_words_per_cycle",
    "word_bits",
    "block_bits",
    "constraints",
)
NETWORK_KEYS = ("multicast", "spatial_reduction", "hop_energy_pj", "source", "links")
LINK_KEYS = ("axis", "energy_pj", "charge")
CONSTRAINT_KEYS = ("temporal_dims", "spatial_x", "spatial_y", "permutation")


def build_target(doc: YamlDoc, source_file: str, content_hash: str) -> Target:
    """Check the whole document and build the Target it describes."""
    fields = Fields(doc)
    if doc.data is None:
        fields.fail("(top level)", "is empty: the file describes no target")
    top = fields.mapping(doc.data, "")
    top.only(TOP_KEYS)
    name = fields.text(top.get("name"), "name")
    description = fields.text(top.get("description"), "description")
    word_bits = fields.integer(top.get("word_bits"), "word_bits")
    mac = fields.mapping(top.get("mac"), "mac")
    mac.only(MAC_KEYS)
    raw_levels = top.get("levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        fields.fail("levels", "must be a non-empty list of storage levels, DRAM first")
    levels = _levels(fields, raw_levels, word_bits)
    levels = _attach_networks(fields, top, levels)
    target = Target(
        name=name,
        description=description,
        levels=tuple(levels),
        mac_energy_pj=fields.number(mac.get("energy_pj"), "mac.energy_pj"),
        mac_energy_source=fields.text(mac.get("source"), "mac.source"),
        word_bits=word_bits,
        clock_hz=fields.number(top.get("clock_hz"), "clock_hz", positive=True),
        source_file=source_file,
        content_hash=content_hash,
        technology=_optional_text(fields, top, "technology"),
        notes=_optional_text(fields, top, "notes"),
    )
    if not top.has("precision"):
        return target
    from joule.targets.precision import Precision, with_precision

    spec = fields.text(top.data["precision"], "precision")
    try:
        precision = Precision.parse(spec)
    except JouleError as err:
        fields.fail("precision", err.what, hint=err.hint)
    return with_precision(target, precision, rename=False)


def _optional_text(fields: Fields, section: Section, key: str) -> str:
    if not section.has(key):
        return ""
    return fields.text(section.data[key], section.at(key), nonempty=False)


def _levels(fields: Fields, raw: list[Any], word_bits: int) -> list[StorageLevel]:
    """Each level on its own, then the rules that relate a level to the one above it."""
    levels: list[StorageLevel] = []
    for i, item in enumerate(raw):
        outer = levels[-1] if levels else None
        lvl = _level(fields, fields.mapping(item, f"levels[{i}]"), outer, word_bits)
        at = f"levels[{i}]"
        if any(other.name == lvl.name for other in levels):
            fields.fail(f"{at}.name", f"repeats the level name {lvl.name!r}")
        if i == 0:
            missing = [r for r in ROLES if r not in lvl.keeps]
            if missing:
                fields.fail(
                    f"{at}.keeps",
                    f"must hold every tensor at the outermost level (missing {', '.join(missing)})",
                    hint="the outermost level (DRAM) is where all data starts: keep all three",
                )
            if lvl.instances != 1:
                fields.fail(
                    f"{at}.instances", f"must be 1 at the outermost level, got {lvl.instances}"
                )
        else:
            _check_fanout(fields, levels[-1], lvl, at)
        levels.append(lvl)
    return levels


def _check_fanout(fields: Fields, outer: StorageLevel, inner: StorageLevel, at: str) -> None:
    """Instances (and each mesh axis) must be whole multiples of the level above."""
    if inner.instances % outer.instances:
        fields.fail(
            f"{at}.instances",
            f"({inner.instances}) must be a multiple of the outer level's "
            f"{outer.name!r} instances ({outer.instances})",
        )
    for axis in ("mesh_x", "mesh_y"):
        mine, theirs = getattr(inner, axis), getattr(outer, axis)
        if mine % theirs:
            fields.fail(
                f"{at}.{axis}",
                f"({mine}) must be a multiple of the outer level's "
                f"{outer.name!r} {axis} ({theirs})",
            )


def _level(
    fields: Fields, sec: Section, outer: StorageLevel | None, word_bits: int
) -> StorageLevel:
    sec.only(LEVEL_KEYS)
    at = sec.at
    name = fields.text(sec.get("name"), at("name"))
    keeps: tuple[Role, ...] = fields.names(sec.get("keeps"), at("keeps"), ROLES, "tensor role")  # type: ignore[assignment]
    if not keeps:
        fields.fail(at("keeps"), "must name at least one tensor (input, weight, output)")
    capacity_words, per_tensor = _capacity(fields, sec, outer is None, keeps)
    instances, mesh_x, mesh_y = _shape(fields, sec, outer)
    read_pj = fields.number(sec.get("read_pj"), at("read_pj"))
    write_pj = fields.number(sec.get("write_pj"), at("write_pj"))
    if "output" in keeps or sec.has("update_pj"):
        update_pj = fields.number(sec.get("update_pj"), at("update_pj"))
    else:
        update_pj = write_pj
    bandwidth = None
    if sec.has("bandwidth_words_per_cycle") and sec.data["bandwidth_words_per_cycle"] is not None:
        bw_at = at("bandwidth_words_per_cycle")
        bandwidth = fields.number(sec.data["bandwidth_words_per_cycle"], bw_at, positive=True)
    bits = word_bits
    if sec.has("word_bits"):
        bits = fields.integer(sec.data["word_bits"], at("word_bits"))
    block = None
    if sec.has("block_bits"):
        block = fields.integer(sec.data["block_bits"], at("block_bits"))
        if block % bits:
            fields.fail(at("block_bits"), f"must be a multiple of the word ({bits} bits)")
    constraints = LevelConstraints()
    if sec.has("constraints"):
        raw = fields.mapping(sec.data["constraints"], at("constraints"))
        constraints = _constraints(fields, raw)
    return StorageLevel(
        name=name,
        keeps=frozenset(keeps),
        instances=instances,
        mesh_x=mesh_x,
        mesh_y=mesh_y,
        capacity_words=capacity_words,
        capacity_per_tensor=per_tensor,
        read_pj=read_pj,
        write_pj=write_pj,
        update_pj=update_pj,
        energy_source=fields.text(sec.get("energy_source"), at("energy_source")),
        bandwidth_words_per_cycle=bandwidth,
        word_bits=bits,
        block_bits=block,
        constraints=constraints,
    )


def _capacity(
    fields: Fields, sec: Section, outermost: bool, keeps: tuple[Role, ...]
) -> tuple[int | None, tuple[tuple[Role, int], ...]]:
    """Shared capacity or one buffer per kept tensor; only the outermost level may omit it."""
    at = sec.at
    shared, split = sec.has("capacity_words"), sec.has("capacity_per_tensor")
    if shared and split:
        fields.fail(at("capacity_per_tensor"), "cannot be given together with capacity_words")
    if shared:
        return fields.integer(sec.data["capacity_words"], at("capacity_words")), ()
    if split:
        per = fields.mapping(sec.data["capacity_per_tensor"], at("capacity_per_tensor"))
        for key in per.data:
            if key not in keeps:
                fields.fail(
                    per.at(str(key)),
                    f"is not a tensor this level keeps (keeps: {', '.join(keeps)})",
                    hint="give one capacity per kept tensor: input, weight and/or output",
                )
        sizes = {role: fields.integer(per.get(role), per.at(role)) for role in keeps}
        return None, tuple((role, sizes[role]) for role in ROLES if role in sizes)
    if not outermost:
        fields.fail(
            at("capacity_words"),
            "is missing: give capacity_words or capacity_per_tensor",
            hint="only the outermost level (DRAM) may leave its capacity unbounded",
        )
    return None, ()


def _shape(fields: Fields, sec: Section, outer: StorageLevel | None) -> tuple[int, int, int]:
    """(instances, mesh_x, mesh_y): given ones must agree.

    Without a mesh, a level with as many instances as the one above shares its
    mesh (no fan-out); any other count is a row along X.
    """
    at = sec.at
    mesh_x = fields.integer(sec.data["mesh_x"], at("mesh_x")) if sec.has("mesh_x") else None
    mesh_y = fields.integer(sec.data["mesh_y"], at("mesh_y")) if sec.has("mesh_y") else None
    if sec.has("instances"):
        instances = fields.integer(sec.data["instances"], at("instances"))
    else:
        instances = (mesh_x or 1) * (mesh_y or 1)
    if mesh_x is None and mesh_y is None:
        if outer is not None and outer.instances == instances:
            return instances, outer.mesh_x, outer.mesh_y
        return instances, instances, 1
    mesh_x, mesh_y = mesh_x or 1, mesh_y or 1
    if mesh_x * mesh_y != instances:
        fields.fail(
            at("instances"),
            f"({instances}) must equal mesh_x * mesh_y ({mesh_x} * {mesh_y} = {mesh_x * mesh_y})",
        )
    return instances, mesh_x, mesh_y


def _constraints(fields: Fields, sec: Section) -> LevelConstraints:
    sec.only(CONSTRAINT_KEYS)

    def dims(key: str) -> frozenset[str] | None:
        if not sec.has(key):
            return None
        return frozenset(fields.names(sec.data[key], sec.at(key), DIMS, "dim"))

    permutation = None
    if sec.has("permutation"):
        permutation = fields.names(sec.data["permutation"], sec.at("permutation"), DIMS, "dim")
    return LevelConstraints(
        temporal_dims=dims("temporal_dims"),
        spatial_x=dims("spatial_x"),
        spatial_y=dims("spatial_y"),
        permutation=permutation,
    )


def _attach_networks(
    fields: Fields, top: Section, levels: list[StorageLevel]
) -> list[StorageLevel]:
    """Give each level its network; a fan-out needs one, spatial limits need a fan-out."""
    names = [lvl.name for lvl in levels]
    networks: dict[str, Network] = {}
    if top.has("networks"):
        sec = fields.mapping(top.data["networks"], "networks")
        for key, value in sec.data.items():
            at = sec.at(str(key))
            if key not in names:
                fields.fail(at, "names no level", hint=f"levels are: {', '.join(names)}")
            if key == names[-1]:
                fields.fail(at, "is below the innermost level, which feeds only the MAC")
            networks[key] = _network(fields, fields.mapping(value, at))
    out = []
    for i, lvl in enumerate(levels):
        fan_x, fan_y = _fanout(levels, i)
        if (fan_x, fan_y) != (1, 1) and lvl.name not in networks:
            fields.fail(
                f"networks.{lvl.name}",
                f"is missing: level {lvl.name!r} fans out {fan_x}x{fan_y} to the level below",
                hint="describe its network: multicast, spatial_reduction, hop_energy_pj, source",
            )
        for axis, fan in (("spatial_x", fan_x), ("spatial_y", fan_y)):
            if getattr(lvl.constraints, axis) and fan == 1:
                fields.fail(
                    f"levels[{i}].constraints.{axis}",
                    f"is given but level {lvl.name!r} has no fan-out along that axis",
                )
        links = networks[lvl.name].links if lvl.name in networks else None
        if links is not None and (fan_x if links.axis == "X" else fan_y) == 1:
            fields.fail(
                f"networks.{lvl.name}.links.axis",
                f"is {links.axis} but level {lvl.name!r} has no fan-out along it",
            )
        out.append(replace(lvl, network=networks.get(lvl.name, Network())))
    return out


def _fanout(levels: list[StorageLevel], index: int) -> tuple[int, int]:
    if index + 1 >= len(levels):
        return (1, 1)
    outer, inner = levels[index], levels[index + 1]
    return (inner.mesh_x // outer.mesh_x, inner.mesh_y // outer.mesh_y)


def _network(fields: Fields, sec: Section) -> Network:
    sec.only(NETWORK_KEYS)
    return Network(
        multicast=fields.boolean(sec.get("multicast"), sec.at("multicast")),
        spatial_reduction=fields.boolean(sec.get("spatial_reduction"), sec.at("spatial_reduction")),
        hop_energy_pj=fields.number(sec.get("hop_energy_pj"), sec.at("hop_energy_pj")),
        source=fields.text(sec.get("source"), sec.at("source")),
        links=_links(fields, fields.mapping(sec.data["links"], sec.at("links")))
        if sec.has("links")
        else None,
    )


def _links(fields: Fields, sec: Section) -> Links:
    sec.only(LINK_KEYS)
    axis = fields.choice(sec.get("axis"), sec.at("axis"), ("X", "Y"), "array axis")
    charge = fields.choice(
        sec.data.get("charge", "every_word"), sec.at("charge"), ("every_word", "timeloop"), "charge"
    )
    energy = fields.number(sec.data.get("energy_pj", 0.0), sec.at("energy_pj"))
    return Links(axis=axis, energy_pj=energy, charge=charge)  # type: ignore[arg-type]
