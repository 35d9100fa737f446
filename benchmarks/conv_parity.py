"""Largest float32 difference from PyTorch over the 600 random layer configurations of the tests.

    python benchmarks/conv_parity.py

For each configuration of tests/conv_configs.py, the same layer runs in float32 in both
libraries; the output and the input and weight gradients are compared. Prints the largest
absolute and relative differences seen.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import torch
    from tests.conv_configs import draw_configs
    from tests.test_conv_torch_parity import build

    import convlab as cl

    warnings.simplefilter("ignore")
    worst = {"abs": 0.0, "rel": 0.0}
    for config in draw_configs(600):
        rng = np.random.default_rng(0)
        batch = config["batch"]
        shape = ((batch,) if batch else ()) + (config["c_in"], *config["spatial"])
        x = rng.standard_normal(shape).astype(np.float32)
        ours, theirs = build(config, np.float32)
        tx, cx = torch.tensor(x, requires_grad=True), cl.tensor(x, requires_grad=True)
        size = config.get("output_size") if config["kind"] == "transpose" else None
        ty = theirs(tx, output_size=size) if size else theirs(tx)
        cy = ours(cx, size) if size else ours(cx)
        g = rng.standard_normal(ty.shape).astype(np.float32)
        ty.backward(torch.tensor(g))
        cy.backward(cl.tensor(g))
        pairs = [
            (cy.detach().numpy(), ty.detach().numpy()),
            (cx.grad.numpy(), tx.grad.numpy()),
            (ours.weight.grad.numpy(), theirs.weight.grad.numpy()),
        ]
        for a, b in pairs:
            if a.size:
                diff = np.abs(a.astype(np.float64) - b)
                worst["abs"] = max(worst["abs"], float(diff.max()))
                worst["rel"] = max(worst["rel"], float((diff / (np.abs(b) + 1e-3)).max()))
    print(
        f"600 configurations, float32 convlab vs float32 PyTorch (output, input and weight "
        f"gradients): max |diff| = {worst['abs']:.3g}, max |diff| / (|torch| + 1e-3) = "
        f"{worst['rel']:.3g}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
