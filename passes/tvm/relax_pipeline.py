"""The ``joule`` Relax pipeline: LegalizeOps, Joule's schedule, then TVM's default build.

``tvm.compile(mod, target="llvm", relax_pipeline="joule")`` maps for
``eyeriss``; ``joule_pipeline("tpu-ws", mapper="random")`` (or
``relax.get_pipeline("joule", target="tpu-ws", ...)``) builds the same pipeline
for any target with any :class:`~joule.passes.tvm.module_pass.JouleSchedule` option.
LegalizeOps is idempotent, so a module that is already legalized is fine too.
"""

from __future__ import annotations

from pathlib import Path

import tvm
from joule.passes.tvm.module_pass import JouleSchedule
from joule.targets.spec import Target
from tvm import relax

PIPELINE_NAME = "joule"
DEFAULT_TARGET = "eyeriss"


def joule_pipeline(
    target: str | Path | Target = DEFAULT_TARGET, **options: object
) -> tvm.transform.Pass:
    """A Relax pipeline (a Pass) that schedules every MAC PrimFunc for ``target`` and builds."""
    schedule = JouleSchedule(target, **options)

    @tvm.transform.module_pass(opt_level=0, name="joule_pipeline")
    def _pipeline(mod: tvm.IRModule, _ctx: tvm.transform.PassContext) -> tvm.IRModule:
        passes = [relax.transform.LegalizeOps(), schedule, relax.get_pipeline("default")]
        return tvm.transform.Sequential(passes)(mod)

    return _pipeline
