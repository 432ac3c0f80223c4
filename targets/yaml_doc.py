"""Parse a target file's YAML and remember where every field sits.

The loader reports errors by field path (``levels[2].capacity_words``) and line,
so parsing keeps a map from field path to line number. Two YAML 1.1 traps are
closed here: ``1e9`` is read as a number (PyYAML would read a string), and a key
given twice in one mapping is an error instead of silently keeping the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from joule.errors import TargetError

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FLOAT_TAG = "tag:yaml.org,2002:float"
# YAML 1.2 floats: a dot or an exponent (so plain integers stay integers).
_FLOAT = re.compile(
    r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[0-9][0-9_]*[eE][-+]?[0-9]+
    |\.(?:inf|Inf|INF))$
    |^\.(?:nan|NaN|NAN)$""",
    re.X,
)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader whose floats follow YAML 1.2."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _FLOAT_TAG]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT, list("-+0123456789."))


@dataclass(frozen=True)
class YamlDoc:
    """A parsed file: its data, and the 1-based line of every field path."""

    file: str
    data: Any
    lines: dict[str, int]


def parse_yaml(text: str, file: str) -> YamlDoc:
    """Parse one YAML document; malformed YAML or a repeated key is a TargetError."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise TargetError(
            f"malformed YAML: {problem}",
            where=f"{file}{line}",
            hint="fix the YAML syntax (indentation, colons, quotes) at that line",
        ) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is not None:
        _index(node, "", lines, file)
    return YamlDoc(file=file, data=data, lines=lines)


def _index(node: yaml.Node, path: str, lines: dict[str, int], file: str, depth: int = 0) -> None:
    """Record the line of every field below ``node``; reject repeated keys."""
    if depth > 50:  # an alias cycle; the schema rejects such data anyway
        return
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            field = f"{path}.{key}" if path else key
            if key in seen:
                raise TargetError(
                    f"{field} is given twice",
                    where=f"{file}, line {key_node.start_mark.line + 1}, field {field}",
                    hint="keep one of the two entries",
                )
            seen.add(key)
            lines[field] = key_node.start_mark.line + 1
            _index(value_node, field, lines, file, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            field = f"{path}[{i}]"
            lines[field] = item.start_mark.line + 1
            _index(item, field, lines, file, depth + 1)
