"""Target templates: a target YAML whose numbers are parameters, priced by the scaling model.

``load_template("eyeriss-template")`` reads ``targets/templates/eyeriss-template.yaml``
(or any path); ``template.instantiate({"mesh_x": 16})`` evaluates every ``"= expr"``
value, prices each level and the MAC with :mod:`joule.hardware.components`, renders a
plain target document and builds it with Joule's own target schema. The result is an
ordinary :class:`joule.targets.spec.Target` (the mapper needs nothing else) plus an
area table. The target's content hash is the sha256 of the rendered YAML, so the
result cache keys a design point by exactly the numbers it was mapped with.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import math
import operator
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from joule.errors import TargetError
from joule.hardware import components
from joule.targets.schema import build_target
from joule.targets.spec import Target
from joule.targets.yaml_doc import parse_yaml

TOP_KEYS = ("template", "description", "parameters", "derived", "target")
MODEL_CLASSES = ("regfile", "sram", "dram", "intmac")


def templates_dir() -> Path:
    """The bundled templates (targets/templates/, shipped as joule.targets package data)."""
    import joule.targets

    return Path(joule.targets.__file__).resolve().parent / "templates"


def bundled_templates() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.yaml"))


def is_template(name_or_path: str | os.PathLike[str]) -> bool:
    """True when the argument names a bundled template or a YAML file with a ``template`` key."""
    text = os.fspath(name_or_path)
    if (templates_dir() / f"{text}.yaml").is_file():
        return True
    path = Path(text)
    if not path.is_file():
        return False
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "template" in data


@dataclass(frozen=True)
class AreaEntry:
    component: str
    instances: int
    um2_each: float
    model: str

    @property
    def um2_total(self) -> float:
        return self.um2_each * self.instances


@dataclass(frozen=True)
class DesignInstance:
    """A template at one parameter point: the Target, its area table and the YAML it came from."""

    template: str
    parameters: dict[str, Any]
    target: Target
    area: tuple[AreaEntry, ...]
    yaml_text: str

    @property
    def area_mm2(self) -> float:
        return sum(a.um2_total for a in self.area) / 1e6


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    parameters: dict[str, Any]
    derived: dict[str, Any]
    body: dict[str, Any]
    source_file: str

    def instantiate(self, overrides: dict[str, Any] | None = None) -> DesignInstance:
        values = dict(self.parameters)
        for key, value in (overrides or {}).items():
            if key not in self.parameters:
                raise TargetError(
                    f"unknown template parameter {key!r}",
                    where=f"template {self.name}",
                    hint="parameters: " + ", ".join(self.parameters),
                )
            values[key] = _coerce(key, value, self.parameters[key], self.name)
        env = dict(values)
        for key, expr in self.derived.items():
            env[key] = _value(expr, env, f"derived.{key}")
        doc, area = _render(self.body, env, self.name)
        doc = {
            "name": _instance_name(self.name, self.parameters, values),
            "description": self.description,
            **doc,
        }
        text = yaml.safe_dump(doc, sort_keys=False, width=100)
        digest = hashlib.sha256(text.encode()).hexdigest()
        shown = f"{self.name}{_params_text(self.parameters, values)}"
        target = build_target(parse_yaml(text, shown), source_file=shown, content_hash=digest)
        return DesignInstance(self.name, values, target, tuple(area), text)


def load_template(name_or_path: str | os.PathLike[str]) -> Template:
    text = os.fspath(name_or_path)
    bundled = templates_dir() / f"{text}.yaml"
    path = bundled if bundled.is_file() else Path(text)
    if not path.is_file():
        raise TargetError(
            f"unknown target template {text!r}",
            where=f"template argument {text!r}",
            hint="use a bundled template ("
            + ", ".join(bundled_templates())
            + ") or a path to a template YAML file",
        )
    shown = str(path)
    doc = parse_yaml(path.read_text(encoding="utf-8"), shown)
    data = doc.data
    if not isinstance(data, dict) or "template" not in data:
        raise TargetError(
            "is not a target template (no 'template' key)",
            where=shown,
            hint="see docs/hardware-model.md",
        )
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise TargetError(
            f"unknown top-level key(s) {', '.join(unknown)}",
            where=shown,
            hint="allowed: " + ", ".join(TOP_KEYS),
        )
    params = data.get("parameters") or {}
    if not isinstance(params, dict) or not isinstance(data.get("target"), dict):
        raise TargetError(
            "needs a 'parameters' mapping and a 'target' mapping", where=shown, hint=""
        )
    return Template(
        name=str(data["template"]),
        description=str(data.get("description", "")),
        parameters=dict(params),
        derived=dict(data.get("derived") or {}),
        body=data["target"],
        source_file=str(path.resolve()),
    )


# --- rendering ---------------------------------------------------------------------


def _render(body: dict[str, Any], env: dict[str, Any], name: str) -> tuple[dict, list[AreaEntry]]:
    doc = _evaluate(copy.deepcopy(body), env, "target")
    node = float(env.get("technology_nm", components.REF_NODE_NM))
    area: list[AreaEntry] = []
    mac = doc.get("mac", {})
    if isinstance(mac, dict) and "model" in mac:
        spec = mac.pop("model")
        est = _estimate(spec, node, "mac.model")
        mac["energy_pj"] = _round(est.read_pj)
        mac["source"] = f"joule.hardware: {est.model} at {node:g} nm"
        pes = max(int(lvl.get("instances", 1)) for lvl in doc.get("levels", []))
        area.append(AreaEntry("mac", pes, est.area_um2, est.model))
    for i, lvl in enumerate(doc.get("levels", [])):
        if "model" not in lvl:
            continue
        spec = lvl.pop("model")
        est = _estimate(spec, node, f"levels[{i}].model")
        word_bits = int(lvl.get("word_bits", doc.get("word_bits", 16)))
        width = int(spec["width_bits"])
        if width % word_bits:
            raise TargetError(
                f"access width {width} bits is not a whole number of {word_bits}-bit words",
                where=f"template {name}, levels[{i}] ({lvl.get('name')})",
                hint="make width_bits a multiple of the level's word_bits",
            )
        words = width // word_bits
        lvl["read_pj"] = _round(est.read_pj / words)
        lvl["write_pj"] = _round(est.write_pj / words)
        lvl["update_pj"] = _round(est.update_pj / words)
        lvl["energy_source"] = (
            f"joule.hardware: {est.model} at {node:g} nm, per {words}-word vector / {words}"
        )
        if spec["class"] != "dram" and "capacity_words" not in lvl:
            lvl["capacity_words"] = int(spec["depth"]) * width // word_bits
        area.append(
            AreaEntry(str(lvl["name"]), int(lvl.get("instances", 1)), est.area_um2, est.model)
        )
    return doc, area


def _estimate(spec: Any, node: float, where: str) -> components.Estimate:
    if not isinstance(spec, dict) or spec.get("class") not in MODEL_CLASSES:
        raise TargetError(
            "model must be a mapping with class " + " | ".join(MODEL_CLASSES),
            where=where,
            hint="see targets/templates/eyeriss-template.yaml",
        )
    kind = spec["class"]
    try:
        if kind == "regfile":
            return components.regfile(int(spec["width_bits"]), int(spec["depth"]), node)
        if kind == "sram":
            return components.sram(int(spec["width_bits"]), int(spec["depth"]), node)
        if kind == "dram":
            return components.dram(str(spec["kind"]), int(spec["width_bits"]))
        return components.intmac(int(spec["multiplier_bits"]), int(spec["adder_bits"]), node)
    except KeyError as err:
        raise TargetError(f"model misses {err.args[0]!r}", where=where, hint="") from None


def _round(x: float) -> float:
    return float(f"{x:.6g}")


def _evaluate(node: Any, env: dict[str, Any], where: str) -> Any:
    if isinstance(node, dict):
        return {k: _evaluate(v, env, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_evaluate(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    return _value(node, env, where)


def _value(node: Any, env: dict[str, Any], where: str) -> Any:
    if isinstance(node, str) and node.startswith("="):
        return _eval_expr(node[1:].strip(), env, where)
    return node


_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_FUNCS = {
    "min": min,
    "max": max,
    "log2": math.log2,
    "ceil": math.ceil,
    "floor": math.floor,
    "int": int,
}


def _eval_expr(text: str, env: dict[str, Any], where: str) -> Any:
    """Arithmetic over names in ``env`` only: no attribute access, no calls but _FUNCS."""

    def ev(n: ast.AST) -> Any:
        if isinstance(n, ast.Expression):
            return ev(n.body)
        if isinstance(n, ast.Constant) and isinstance(n.value, int | float | str):
            return n.value
        if isinstance(n, ast.Name):
            if n.id not in env:
                raise KeyError(n.id)
            return env[n.id]
        if isinstance(n, ast.BinOp) and type(n.op) in _BINOPS:
            return _BINOPS[type(n.op)](ev(n.left), ev(n.right))
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub):
            return -ev(n.operand)
        if isinstance(n, ast.Tuple):
            return tuple(ev(e) for e in n.elts)
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name)
            and n.func.id in _FUNCS
            and not n.keywords
        ):
            return _FUNCS[n.func.id](*(ev(a) for a in n.args))
        raise ValueError(f"unsupported syntax {ast.dump(n)[:40]}")

    try:
        return ev(ast.parse(text, mode="eval"))
    except KeyError as err:
        raise TargetError(
            f"expression {text!r} uses unknown name {err.args[0]!r}",
            where=where,
            hint="use a parameter or a derived value",
        ) from None
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError) as err:
        raise TargetError(f"cannot evaluate {text!r}: {err}", where=where, hint="") from None


def _coerce(key: str, value: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool) or isinstance(default, str):
        return str(value)
    try:
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        return float(value)
    except (TypeError, ValueError):
        raise TargetError(
            f"parameter {key} must be {'an integer' if isinstance(default, int) else 'a number'}, "
            f"got {value!r}",
            where=f"template {name}",
            hint="",
        ) from None


def _params_text(defaults: dict[str, Any], values: dict[str, Any]) -> str:
    changed = [
        f"{k}={values[k]:g}" if isinstance(values[k], float) else f"{k}={values[k]}"
        for k in defaults
        if values[k] != defaults[k]
    ]
    return f"({','.join(changed)})" if changed else ""


def _instance_name(name: str, defaults: dict[str, Any], values: dict[str, Any]) -> str:
    return name + _params_text(defaults, values)
