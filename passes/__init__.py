"""Transformations on Joule's IR: canonicalisation, dataflow constraints, tiling with CP-SAT."""
