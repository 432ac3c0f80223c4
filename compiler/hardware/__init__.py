"""Derived targets for hardware design-space exploration.

A *template* (targets/templates/*.yaml) is a target whose sizes are parameters;
:mod:`joule.hardware.components` prices every storage level and the MAC from its
size, width and process node (docs/hardware-model.md), and
:func:`load_template(...).instantiate(params) <joule.hardware.template.Template.instantiate>`
gives an ordinary :class:`joule.targets.spec.Target` plus an area table.
"""

from joule.hardware.template import (
    AreaEntry,
    DesignInstance,
    Template,
    bundled_templates,
    is_template,
    load_template,
)

__all__ = [
    "AreaEntry",
    "DesignInstance",
    "Template",
    "bundled_templates",
    "is_template",
    "load_template",
]
