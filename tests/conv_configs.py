"""Random convolution configurations from a fixed seed, shared by the PyTorch differential tests.

Each configuration is a dict of constructor-style arguments that is valid for both PyTorch and
convlab; drawing is rejection sampling over small sizes so every corner (groups, dilation,
'same' with even kernels, padding modes, output_padding, output_size, unbatched input) appears.
"""

from __future__ import annotations

import numpy as np

from convlab import shapes


def _conv_config(rng: np.random.Generator) -> dict | None:
    n = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 1, 2, 3]))
    depthwise = rng.random() < 0.15
    c_in = groups * int(rng.integers(1, 3))
    if depthwise:
        groups = c_in = int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 3))
    max_k = {1: 5, 2: 4, 3: 3}[n]
    kernel = tuple(int(k) for k in rng.integers(1, max_k + 1, n))
    stride = tuple(int(s) for s in rng.integers(1, 4, n))
    dilation = tuple(int(d) for d in rng.integers(1, 3, n)) if rng.random() < 0.4 else (1,) * n
    spatial = tuple(int(s) for s in rng.integers({1: 4, 2: 3, 3: 2}[n], {1: 12, 2: 8, 3: 6}[n], n))
    kind = rng.choice(["int", "tuple", "same", "valid"], p=[0.4, 0.3, 0.2, 0.1])
    if kind == "same":
        stride = (1,) * n
        padding = "same"
        pads = [shapes.same_padding(k, d) for k, d in zip(kernel, dilation)]
    elif kind == "valid":
        padding = "valid"
        pads = [(0, 0)] * n
    elif kind == "int":
        padding = int(rng.integers(0, 3))
        pads = [(padding, padding)] * n
    else:
        padding = tuple(int(p) for p in rng.integers(0, 3, n))
        pads = [(p, p) for p in padding]
    mode = str(rng.choice(["zeros", "zeros", "reflect", "replicate", "circular"]))
    if mode == "reflect" and any(hi >= s or lo >= s for (lo, hi), s in zip(pads, spatial)):
        mode = "zeros"
    if mode == "circular" and any(hi > s or lo > s for (lo, hi), s in zip(pads, spatial)):
        mode = "zeros"
    if any(
        s + lo + hi < d * (k - 1) + 1 for s, (lo, hi), k, d in zip(spatial, pads, kernel, dilation)
    ):
        return None
    return dict(
        kind="conv",
        n=n,
        batch=int(rng.integers(0, 4)),
        c_in=c_in,
        c_out=c_out,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bool(rng.random() < 0.7),
        padding_mode=mode,
        spatial=spatial,
    )


def _transpose_config(rng: np.random.Generator) -> dict | None:
    n = int(rng.integers(1, 4))
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in = groups * int(rng.integers(1, 3))
    c_out = groups * int(rng.integers(1, 3))
    max_k = {1: 5, 2: 4, 3: 3}[n]
    kernel = tuple(int(k) for k in rng.integers(1, max_k + 1, n))
    stride = tuple(int(s) for s in rng.integers(1, 4, n))
    dilation = tuple(int(d) for d in rng.integers(1, 3, n)) if rng.random() < 0.4 else (1,) * n
    spatial = tuple(int(s) for s in rng.integers(1, {1: 8, 2: 6, 3: 4}[n], n))
    padding = tuple(int(p) for p in rng.integers(0, 3, n))
    output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
    out = shapes.conv_transpose_output_shape(
        spatial, kernel, stride, padding, dilation, output_padding
    )
    if min(out) <= 0:
        return None
    # output_size reaches only min + stride - 1: PyTorch ignores dilation's extra room there.
    use_output_size = rng.random() < 0.3 and all(p < s for p, s in zip(output_padding, stride))
    return dict(
        kind="transpose",
        n=n,
        batch=int(rng.integers(0, 4)),
        c_in=c_in,
        c_out=c_out,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bool(rng.random() < 0.7),
        output_padding=output_padding,
        spatial=spatial,
        output_size=out if use_output_size else None,
    )


def draw_configs(count: int, seed: int = 2026) -> list[dict]:
    """``count`` valid configurations, about 60 % convolutions and 40 % transposed ones."""
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        config = _conv_config(rng) if rng.random() < 0.6 else _transpose_config(rng)
        if config is not None:
            configs.append(config)
    return configs
