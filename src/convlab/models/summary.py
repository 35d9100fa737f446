"""Layer-by-layer summary of a model: output shapes, parameters and multiply-adds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import convlab as cl
from convlab import nn

__all__ = ["LayerRow", "format_summary", "summarize"]


@dataclass
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    parameters: int
    mult_adds: int


def _leaves(module: nn.Module, prefix: str = ""):
    children = list(module.named_children())
    if not children:
        yield prefix or type(module).__name__, module
        return
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"summary walks nn.Sequential models; {type(module).__name__} is not one")
    for name, child in children:
        yield from _leaves(child, f"{prefix}.{name}" if prefix else name)


def _mult_adds(layer: nn.Module, x: np.ndarray, y: np.ndarray) -> int:
    """Multiply-adds for one sample (batch of 1)."""
    if isinstance(layer, nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d):
        return x.size * layer.weight.shape[1] * math.prod(layer.kernel_size)
    if isinstance(layer, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return y.size * layer.weight.shape[1] * math.prod(layer.kernel_size)
    if type(layer).__name__ == "Linear":
        return y.size * layer.weight.shape[1]
    return 0


def summarize(model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Run one zero sample of ``input_shape`` (C, *spatial) through each layer in turn."""
    x = cl.zeros(1, *input_shape)
    rows = []
    was_training = model.training
    model.eval()
    try:
        with cl.no_grad():
            for name, layer in _leaves(model):
                y = layer(x)
                params = sum(p.data.size for p in layer.parameters())
                rows.append(
                    LayerRow(
                        name,
                        type(layer).__name__,
                        tuple(y.shape[1:]),
                        params,
                        _mult_adds(layer, x.data, y.data),
                    )
                )
                x = y
    finally:
        model.train(was_training)
    return rows


def format_summary(rows: list[LayerRow], title: str, input_shape: tuple[int, ...]) -> str:
    """A table like torchinfo's: one row per layer, then totals."""
    header = ("layer", "type", "output shape", "params", "mult-adds")
    table = [
        (
            r.name,
            r.kind,
            "x".join(map(str, r.output_shape)),
            f"{r.parameters:,}",
            f"{r.mult_adds:,}",
        )
        for r in rows
    ]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *table)]
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def fmt(cells):
        return "  ".join(
            str(c).ljust(w) if i < 3 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        )

    total_params = sum(r.parameters for r in rows)
    total_macs = sum(r.mult_adds for r in rows)
    activations = sum(math.prod(r.output_shape) for r in rows)
    out = [
        f"{title}  (input {'x'.join(map(str, input_shape))}, per sample)",
        line,
        fmt(header),
        line,
        *(fmt(row) for row in table),
        line,
        f"total parameters: {total_params:,} ({4 * total_params / 1024:,.1f} KiB as float32)",
        f"total mult-adds:  {total_macs:,} ({total_macs / 1e6:,.2f} M)",
        f"activations:      {activations:,} values ({4 * activations / 1024:,.1f} KiB)",
    ]
    return "\n".join(out)
