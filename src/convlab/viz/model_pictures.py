"""Pictures of a trained model: its first layer's kernels and the feature maps of every
convolutional layer for one input.

The arrays come from pure functions (:func:`conv_layers`, :func:`feature_maps`), the pictures
from matplotlib (``pip install 'convlab[viz]'``), imported only when a picture is drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import convlab as cl
from convlab import nn
from convlab.nn.conv import _ConvNd

__all__ = [
    "FeatureMap",
    "conv_layers",
    "feature_maps",
    "save_feature_maps",
    "save_kernels",
]

MAX_CHANNELS = 16  # feature maps shown per layer
MAX_TILES = 256  # kernel tiles shown


@dataclass
class FeatureMap:
    """The output of one convolution (after its activation, when one follows it)."""

    name: str  # e.g. "0 Conv2d + 1 ReLU"
    array: np.ndarray  # (channels, *spatial) for the one input


def conv_layers(model: nn.Module) -> list[tuple[str, _ConvNd]]:
    """Every convolution and transposed convolution of ``model``, in definition order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, _ConvNd)]


def _is_activation(module: nn.Module) -> bool:
    return type(module).__module__ == "convlab.nn.activation"


def _activation_after(model: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    """For each convolution directly followed by an activation in a Sequential: that one."""
    found = {}
    for prefix, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for (_, child), (name, after) in zip(children, children[1:]):
            if isinstance(child, _ConvNd) and _is_activation(after):
                found[id(child)] = (f"{prefix}.{name}" if prefix else name, after)
    return found


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("pictures need matplotlib: pip install 'convlab[viz]'") from None
    return plt


def feature_maps(model: nn.Module, x: np.ndarray) -> list[FeatureMap]:
    """Run ``model`` on one normalised input ``x`` of shape ``(C, *spatial)`` and keep the
    output of every convolution, taken after the activation that follows it (if any).

    Raises ValueError when the model has no convolutional layer.
    """
    layers = conv_layers(model)
    if not layers:
        raise ValueError(f"the model ({type(model).__name__}) has no convolutional layer")
    after = _activation_after(model)
    maps: list[FeatureMap] = []
    handles = []
    for name, conv in layers:
        label = f"{name} {type(conv).__name__}"
        watched = conv
        if id(conv) in after:
            act_name, watched = after[id(conv)]
            label += f" + {act_name} {type(watched).__name__}"

        def keep(module, args, output, label=label):
            maps.append(FeatureMap(label, np.array(output.numpy()[0], copy=True)))

        handles.append(watched.register_forward_hook(keep))
    model.eval()
    try:
        with cl.no_grad():
            model(cl.Tensor(np.asarray(x, dtype=np.float32)[None]))
    finally:
        for handle in handles:
            handle.remove()
    return maps


def _as_tiles(weight: np.ndarray) -> tuple[np.ndarray, int, int, str]:
    """(rows, cols, kh, kw) tiles of a weight, and how they are laid out."""
    w = np.asarray(weight, dtype=np.float64)
    note = ""
    if w.ndim == 5:  # 3-d kernels: the middle depth slice
        w = w[:, :, w.shape[2] // 2]
        note = ", middle depth slice"
    out, inp = w.shape[:2]
    if inp == 1:
        cols = min(out, max(1, math.ceil(math.sqrt(out * 1.5))))
        rows = math.ceil(out / cols)
        tiles = np.full((rows * cols, *w.shape[2:]), np.nan)
        tiles[:out] = w[:, 0]
        return tiles.reshape(rows, cols, *w.shape[2:]), rows, cols, f"one tile per filter{note}"
    return w, out, inp, f"rows: filters, columns: input channels{note}"


def save_kernels(weight: np.ndarray, path: str | Path, title: str = "") -> Path:
    """The kernels of one layer as a grid of tiles on a diverging colour map centred on 0.

    ``weight`` is ``(out, in, *kernel)``: one tile per output channel when ``in == 1``, else one
    per (output, input) pair, one colour scale for all so tiles compare.
    """
    plt = _pyplot()
    if np.ndim(weight) == 3:
        return _save_kernels_1d(np.asarray(weight, dtype=np.float64), plt, Path(path), title)
    tiles, rows, cols, layout = _as_tiles(weight)
    if rows * cols > MAX_TILES:
        keep_rows = max(1, MAX_TILES // cols)
        tiles, rows = tiles[:keep_rows], keep_rows
        layout += f", first {keep_rows} filters"
    limit = float(np.nanmax(np.abs(tiles))) or 1.0
    kh, kw = tiles.shape[2:]
    scale = 0.9 if max(kh, kw) > 1 else 0.5
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(max(3.0, cols * scale * max(1, kw / max(kh, 1)) ** 0.5 + 1.2), rows * scale + 1),
        squeeze=False,
    )
    image = None
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if np.all(np.isnan(tiles[r, c])):
                ax.axis("off")
                continue
            image = ax.imshow(tiles[r, c], cmap="RdBu_r", vmin=-limit, vmax=limit)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    fig.suptitle(f"{title} ({layout})" if title else layout, fontsize=9)
    return _save(fig, plt, Path(path))


def _save_kernels_1d(w: np.ndarray, plt, path: Path, title: str) -> Path:
    """1-d kernels: one row per filter, the taps of each input channel side by side."""
    out, inp, k = w.shape
    w = w[:MAX_TILES]
    limit = float(np.abs(w).max()) or 1.0
    fig, ax = plt.subplots(figsize=(max(3.0, 0.35 * inp * k + 1.5), max(2.0, 0.22 * len(w) + 1)))
    image = ax.imshow(w.reshape(len(w), inp * k), cmap="RdBu_r", vmin=-limit, vmax=limit)
    for boundary in range(1, inp):
        ax.axvline(boundary * k - 0.5, color="black", linewidth=1)
    ax.set_ylabel("filter")
    ax.set_xlabel("tap" if inp == 1 else "input channel x tap")
    ax.set_xticks(range(inp * k), [str(t) for _ in range(inp) for t in range(k)], fontsize=7)
    fig.colorbar(image, ax=ax, shrink=0.8)
    layout = "one row per filter" + (f", first {len(w)}" if out > len(w) else "")
    ax.set_title(f"{title} ({layout})" if title else layout, fontsize=9)
    return _save(fig, plt, path)


def save_feature_maps(
    image: np.ndarray, maps: list[FeatureMap], path: str | Path, title: str = ""
) -> Path:
    """The input (top row) and, per convolutional layer, its first channels' feature maps."""
    plt = _pyplot()
    one_d = image.ndim == 2  # (C, L)
    cols = 1 if one_d else max(1, min(MAX_CHANNELS, max(m.array.shape[0] for m in maps)))
    rows = 1 + len(maps)
    size = 1.1 if not one_d else 1.4
    fig, axes = plt.subplots(
        rows, cols, figsize=(max(4.0, cols * size), rows * size + 0.6), squeeze=False
    )
    if one_d:
        fig.subplots_adjust(hspace=0.6)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if one_d:
        axes[0, 0].plot(image[0], color="black", linewidth=1)
        axes[0, 0].set_title("input", fontsize=8, loc="left")
        for row, feature in enumerate(maps, start=1):
            ax = axes[row, 0]
            ax.imshow(feature.array, aspect="auto", cmap="viridis", interpolation="nearest")
            channels, length = feature.array.shape
            ax.set_title(f"{feature.name}: {channels} channels x {length}", fontsize=8, loc="left")
    else:
        picture = image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)
        axes[0, 0].imshow(picture, cmap="gray")
        axes[0, 0].set_title("input", fontsize=8, loc="left")
        for ax in axes[0, 1:]:
            ax.axis("off")
        for row, feature in enumerate(maps, start=1):
            array = feature.array
            if array.ndim == 4:  # 3-d maps: the middle depth slice
                array = array[:, array.shape[1] // 2]
            shown = min(cols, array.shape[0])
            low, high = float(array[:shown].min()), float(array[:shown].max())
            high = high if high > low else low + 1.0  # a dead layer: all one value
            for c in range(cols):
                ax = axes[row, c]
                if c >= shown:
                    ax.axis("off")
                    continue
                ax.imshow(array[c], cmap="viridis", vmin=low, vmax=high)
            more = f" (first {shown} of {array.shape[0]})" if array.shape[0] > shown else ""
            size_text = "x".join(map(str, array.shape[1:]))
            axes[row, 0].set_title(
                f"{feature.name}: {array.shape[0]} x {size_text}{more}", fontsize=8, loc="left"
            )
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, plt, Path(path))


def _save(fig, plt, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    try:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    tmp.replace(path)
    return path
