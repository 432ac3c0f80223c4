"""Joule inside TVM: the module pass that applies mappings to TIR, the Relax pipeline
``joule``, and the verified emission of a scheduled module.

Importing this package imports TVM and registers the pipeline, so that
``tvm.compile(mod, relax_pipeline="joule")`` works after ``import joule.passes.tvm``;
nothing else in Joule imports TVM outside the frontend, and no import hook is left
behind (``joule.passes.tvm.joule_pipeline`` is the same pipeline, built directly).
"""

from joule.passes.tvm.module_pass import JouleSchedule
from joule.passes.tvm.relax_pipeline import PIPELINE_NAME, joule_pipeline
from tvm.relax import pipeline as _relax_pipeline

_relax_pipeline.PIPELINE_MAP.setdefault(PIPELINE_NAME, joule_pipeline)

__all__ = ["PIPELINE_NAME", "JouleSchedule", "joule_pipeline"]
