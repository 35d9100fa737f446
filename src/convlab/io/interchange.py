"""Weights across PyTorch and convlab: load ``.pt``/``.pth``/``.safetensors``, save safetensors.

convlab's modules name their parameters and buffers exactly as ``torch.nn`` does, so a
``state_dict`` saved by PyTorch loads into the convlab module of the same structure, and the
safetensors file convlab writes loads into the matching ``torch.nn`` module. Neither direction
needs PyTorch installed, and no pickle code ever runs (see :mod:`convlab.io.torch_format`).

>>> model = convlab.models.lenet5()
>>> load_weights(model, "lenet.pt")          # torch.save(torch_lenet.state_dict(), "lenet.pt")
<All keys matched successfully>
>>> save_weights(model, "lenet.safetensors")  # torch: safetensors.torch.load_file, load_state_dict
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from convlab.autograd import Tensor
from convlab.io.checkpoint import CheckpointError
from convlab.io.safetensors import SafetensorsError, load_file, save_file
from convlab.io.torch_format import load_torch_checkpoint

__all__ = ["load_torch_state_dict", "load_weights", "read_weights", "save_weights"]

# Where training scripts commonly keep the weights inside a checkpoint dict, best first.
_USUAL_KEYS = ("state_dict", "model_state_dict", "model", "model_state", "net", "module")
_MAX_DEPTH = 3


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items())
    )


def _find_state_dict(obj: Any, key: str | None, source: str) -> dict[str, np.ndarray]:
    if key is not None:
        if not isinstance(obj, dict) or key not in obj:
            keys = list(obj) if isinstance(obj, dict) else []
            raise CheckpointError(f"{source} has no entry {key!r}; its top-level keys: {keys}")
        if not (_is_state_dict(obj[key]) or (isinstance(obj[key], dict) and not obj[key])):
            raise CheckpointError(
                f"{source}: entry {key!r} is a {type(obj[key]).__name__}, not a state_dict "
                "(a dict of tensors by name)"
            )
        return dict(obj[key])
    if _is_state_dict(obj) or (isinstance(obj, dict) and not obj):
        return dict(obj)
    # A checkpoint dict such as {"model": state_dict, "optimizer": ..., "epoch": 3}: take the
    # state_dict nearest the top; among several at that depth, the one under a usual name.
    level: list[tuple[str, Any]] = [("", obj)]
    for _ in range(_MAX_DEPTH):
        level = [
            (f"{where}.{k}" if where else str(k), v)
            for where, parent in level
            if isinstance(parent, dict)
            for k, v in parent.items()
        ]
        found = [(where, v) for where, v in level if _is_state_dict(v)]
        if len(found) == 1:
            return dict(found[0][1])
        for usual in _USUAL_KEYS:
            for where, value in found:
                if where.rsplit(".", 1)[-1] == usual:
                    return dict(value)
        if found:
            raise CheckpointError(
                f"{source} holds several state_dicts ({', '.join(w for w, _ in found)}): "
                "choose one with key=..."
            )
    what = f"a dict with keys {list(obj)[:10]}" if isinstance(obj, dict) else type(obj).__name__
    raise CheckpointError(f"{source} holds {what}, with no state_dict (a dict of tensors by name)")


def load_torch_state_dict(path: str | os.PathLike, key: str | None = None) -> dict[str, np.ndarray]:
    """The ``state_dict`` saved by ``torch.save`` in ``path``, as NumPy arrays by name.

    Args:
        path: a ``.pt``/``.pth`` file (zip format). It may hold the state_dict itself or a
            checkpoint dict around it (``{"model": state_dict, "epoch": 3, ...}``).
        key: the top-level entry to take; by default the only state_dict nearest the top, or
            among several the one named ``state_dict``, ``model_state_dict``, ``model``, ...

    No code in the file runs; see :func:`convlab.io.torch_format.load_torch_checkpoint` for
    what is accepted and refused.

    >>> arrays = load_torch_state_dict("checkpoint.pt")
    >>> sorted(arrays)[:2]
    ['0.bias', '0.weight']
    """
    return _find_state_dict(load_torch_checkpoint(path), key, str(path))


def read_weights(path: str | os.PathLike, key: str | None = None) -> dict[str, np.ndarray]:
    """Arrays by name from a ``torch.save`` zip or a safetensors file, told apart by content."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    # safetensors: an 8-byte header length, then the JSON header's "{". A zip starts "PK"; a
    # legacy torch file with a pickle ("\x80"): the torch reader explains those.
    if not head or head.startswith(b"PK") or (head[:1] == b"\x80" and head[8:9] != b"{"):
        return load_torch_state_dict(path, key)
    if key is not None:
        raise CheckpointError(f"{path} is a safetensors file: it has no entries to pick with key")
    try:
        return load_file(path)
    except SafetensorsError as error:
        raise CheckpointError(
            f"{path} is neither a torch.save zip nor valid safetensors (the safetensors reader "
            f"says: {error})"
        ) from None


def load_weights(module, path: str | os.PathLike, strict: bool = True, key: str | None = None):
    """Load weights saved by PyTorch (or by :func:`save_weights`) into a convlab module.

    Args:
        module: a convlab ``nn.Module`` with the same structure as the saved one.
        path: ``torch.save(model.state_dict(), path)`` output (``.pt``/``.pth``, zip format) or
            a ``.safetensors`` file; the format is recognised from the content.
        strict: as in ``Module.load_state_dict``: missing or unexpected names are an error
            (``False``: they are returned instead). A shape mismatch is always an error.
        key: for a checkpoint dict, the entry holding the state_dict (see
            :func:`load_torch_state_dict`).

    Returns:
        ``(missing_keys, unexpected_keys)`` as ``Module.load_state_dict`` returns them.

    Raises:
        CheckpointError: unreadable, corrupt or unsafe file (:class:`UnsafeCheckpointError`), or
            weights that do not fit: the message lists every missing and unexpected name and
            every size mismatch, as PyTorch's strict loading does. Then nothing is loaded.

    >>> model = convlab.models.lenet5()
    >>> load_weights(model, "lenet.pth")
    <All keys matched successfully>

    See https://pytorch.org/docs/stable/generated/torch.nn.Module.html#torch.nn.Module.load_state_dict
    """
    arrays = read_weights(path, key)
    try:
        return module.load_state_dict(arrays, strict=strict)
    except RuntimeError as error:
        raise CheckpointError(f"cannot load {path}: {error}") from None


def save_weights(
    module, path: str | os.PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Write a module's ``state_dict`` (or a dict of arrays) as safetensors, atomically.

    The names are torch's, buffers included (batch norm's ``num_batches_tracked`` stays int64),
    so PyTorch loads the file into the matching ``torch.nn`` module:
    ``torch_model.load_state_dict(safetensors.torch.load_file(path))``.

    >>> save_weights(model, "lenet.safetensors", {"model": "lenet5"})
    """
    if isinstance(module, Mapping):
        state = {k: (v.data if isinstance(v, Tensor) else np.asarray(v)) for k, v in module.items()}
    else:
        state = module.state_dict()
    save_file(state, path, {"format": "pt", **(metadata or {})})
