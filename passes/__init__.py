"""Transformations on Joule's IR: canonicalisation, dataflow constraints, tiling.

The pipeline passes are ``canonicalize``, ``dataflow`` and ``tile``; the mapper
they call lives in ``joule.passes.mapper``; TVM integration (the module pass, the
Relax pipeline ``joule``, emission) lives in ``joule.passes.tvm``, which is the only
part that imports TVM.
"""
