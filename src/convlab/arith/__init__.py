"""Convolution arithmetic: output sizes with the numbers in, solving back, the matrix C, examples.

``convlab.arith`` explains what ``convlab.shapes`` and the kernels compute: every size comes
from :mod:`convlab.shapes` and every value from the kernels, so an explanation cannot disagree
with the computation. See Dumoulin & Visin, "A guide to convolution arithmetic for deep
learning" (arXiv 1603.07285).
"""

from __future__ import annotations

from convlab.arith.explain import worked_example
from convlab.arith.matrix import conv_matrix, transpose_output_padding
from convlab.arith.sizes import (
    OPS,
    ArithError,
    Layer,
    ceil_mode_note,
    formula,
    general_formula,
    layer,
    solve,
    transpose_sizes,
)

__all__ = [
    "OPS",
    "ArithError",
    "Layer",
    "ceil_mode_note",
    "conv_matrix",
    "formula",
    "general_formula",
    "layer",
    "solve",
    "transpose_output_padding",
    "transpose_sizes",
    "worked_example",
]
