"""ONNX interchange: run ONNX graphs with convlab, and export convlab models to ONNX.

Needs the ``onnx`` extra (``pip install 'convlab[onnx]'``: the ``onnx`` package; the tests also
use ``onnxruntime``). The packages are imported when a function needs them, so
``import convlab.onnx`` works without them.

>>> model = convlab.onnx.load("lenet.onnx")              # an nn.Module
>>> logits = model(images)                               # Tensor, differentiable
>>> convlab.onnx.export(convlab.models.lenet5(), cl.randn(1, 1, 28, 28), "lenet.onnx")

The operators and attributes supported are listed in ``convlab.onnx.ops.OPERATORS`` and in the
module documentation of ``convlab.onnx.ops``.
"""

from __future__ import annotations

from convlab.onnx.exporter import export
from convlab.onnx.importer import OnnxModel, load
from convlab.onnx.ops import OPERATORS, OnnxError

__all__ = ["OPERATORS", "OnnxError", "OnnxModel", "export", "load"]
