"""Transformations on Joule's IR: canonicalisation, dataflow constraints, tiling with CP-SAT.

The TVM pass (``passes.tvm_schedule.JouleSchedule``) and the Relax pipeline
``joule`` (registered when TVM loads, see ``passes.tvm_register``) apply the
mappings to TVM's TIR; ``joule_pipeline(target, **options)`` builds that
pipeline for any target. Nothing here imports TVM until it is used.
"""

from typing import Any

from passes.tvm_register import install as _install_joule_pipeline
from passes.tvm_register import joule_pipeline

_install_joule_pipeline()


def __getattr__(name: str) -> Any:
    if name == "JouleSchedule":  # imports TVM: only on use
        from passes.tvm_schedule import JouleSchedule

        return JouleSchedule
    raise AttributeError(f"module 'passes' has no attribute {name!r}")


__all__ = ["JouleSchedule", "joule_pipeline"]
