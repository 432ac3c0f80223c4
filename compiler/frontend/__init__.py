"""The frontend: ONNX -> Relax -> legalized TIR. TVM is imported here and nowhere else.

``load_onnx`` returns the module after LegalizeOps and the link from Relax
values back to ONNX nodes; ``describe_module`` turns the module into plain
Python records (call sites, loop blocks with affine accesses) for the lowering.
"""

from joule.frontend.describe import describe_module
from joule.frontend.importer import SiteInfo, load_onnx
from joule.frontend.reading import ModelSource, read_model
from joule.frontend.records import ModuleDescription, OnnxNode

__all__ = [
    "ModelSource",
    "ModuleDescription",
    "OnnxNode",
    "SiteInfo",
    "describe_module",
    "load_onnx",
    "read_model",
]
