"""Training curves and confusion matrices as PNG files.

matplotlib is an optional extra (``pip install 'convlab[viz]'``): without it these functions
write nothing and return None, and the commands say how to get the pictures.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["save_confusion_matrix", "save_reconstructions", "save_training_curves"]


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(no picture: matplotlib is missing; pip install 'convlab[viz]')", file=sys.stderr)
        return None
    return plt


def _save(fig, plt, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def save_training_curves(summary: dict, path: str | Path) -> Path | None:
    """Loss per epoch, and train/test accuracy per epoch for classifiers."""
    plt = _pyplot()
    if plt is None or not summary.get("history"):
        return None
    history = summary["history"]
    epochs = [h["epoch"] for h in history]
    classify = "test_accuracy" in history[-1]
    fig, axes = plt.subplots(1, 2 if classify else 1, figsize=(10 if classify else 5, 3.6))
    axes = np.atleast_1d(axes)
    axes[0].plot(epochs, [h["train_loss"] for h in history], "o-", label="train loss")
    if classify:
        axes[0].plot(epochs, [h["test_loss"] for h in history], "s--", label="test loss")
    else:
        axes[0].plot(epochs, [h["test_mse"] for h in history], "s--", label="test mse")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    axes[0].grid(alpha=0.3)
    if classify:
        axes[1].plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", label="train")
        axes[1].plot(epochs, [100 * h["test_accuracy"] for h in history], "s--", label="test")
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("accuracy (%)")
        axes[1].legend()
        axes[1].grid(alpha=0.3)
        best = max(h["test_accuracy"] for h in history)
        axes[1].set_title(
            f"final test {100 * history[-1]['test_accuracy']:.2f}% (best {100 * best:.2f}%)"
        )
    fig.suptitle(f"{summary.get('model', '')} on {summary.get('data', '')}")
    return _save(fig, plt, Path(path))


def save_confusion_matrix(matrix: np.ndarray, classes: list[str], path: str | Path) -> Path | None:
    """Counts of true (rows) against predicted (columns) classes, numbers in the cells."""
    plt = _pyplot()
    if plt is None:
        return None
    n = len(classes)
    fig, ax = plt.subplots(figsize=(0.5 * n + 2.5, 0.5 * n + 2))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), classes)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    limit = matrix.max() / 2 if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(matrix[i, j]),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if matrix[i, j] > limit else "black",
            )
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(f"accuracy {100 * accuracy:.2f}%")
    return _save(fig, plt, Path(path))


def save_reconstructions(
    originals: np.ndarray, reconstructions: np.ndarray, path: str | Path
) -> Path | None:
    """Originals (top row) above their reconstructions (bottom row), greyscale."""
    plt = _pyplot()
    if plt is None:
        return None
    count = len(originals)
    fig, axes = plt.subplots(2, count, figsize=(1.1 * count, 2.5))
    axes = np.asarray(axes).reshape(2, count)
    for column in range(count):
        for row, images in enumerate((originals, reconstructions)):
            ax = axes[row, column]
            ax.imshow(images[column][0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("rebuilt")
    return _save(fig, plt, Path(path))
