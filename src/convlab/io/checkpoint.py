"""Run directories: weights, the recipe to rebuild the model, and the state to resume training.

A run directory holds
- ``config.json``: the model's name and arguments, the data and its normalisation, the classes
  and the training options: everything needed to rebuild the model without code;
- ``model.safetensors``: the weights (``state_dict`` names, as PyTorch would name them);
- ``resume.safetensors``: weights, optimiser state and progress in ONE file, so a run stopped at
  any moment resumes from a consistent epoch;
- ``metrics.json``: per-epoch loss and accuracy, final test accuracy, timings.

Every file is written atomically (temporary file, then rename) and nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from convlab.io.safetensors import SafetensorsError, atomic_write_bytes, load_file, save_file

__all__ = [
    "CheckpointError",
    "load_config",
    "load_model",
    "load_resume_state",
    "save_json",
    "save_resume_state",
    "save_weights",
]

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
RESUME = "resume.safetensors"
METRICS = "metrics.json"


class CheckpointError(ValueError):
    """A run directory or checkpoint that cannot be used: missing, corrupt or mismatched."""


def save_json(path: str | os.PathLike, data: dict) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def load_config(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / CONFIG
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{run_dir} is not a convlab run directory (no {CONFIG})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is unreadable or corrupt: {error}") from None
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{path} is corrupt: it does not name a model")
    return config


def save_weights(run_dir: str | os.PathLike, model, model_name: str) -> None:
    """The run's weights in the same safetensors form ``convlab.io.save_weights`` writes."""
    from convlab.io.interchange import save_weights as save_state_dict  # it imports this module

    save_state_dict(model, Path(run_dir) / WEIGHTS, {"convlab_model": model_name})


def _load_into(model, arrays: dict[str, np.ndarray], source: str) -> None:
    try:
        model.load_state_dict(arrays)
    except RuntimeError as error:
        first = str(error).splitlines()
        detail = "; ".join(line.strip() for line in first[1:]) or first[0]
        raise CheckpointError(f"{source} does not fit this model: {detail}") from None


def load_model(run_dir: str | os.PathLike):
    """Rebuild the model of a run directory from ``config.json`` and load its weights."""
    from convlab.models import build_model

    config = load_config(run_dir)
    try:
        model = build_model(config["model"], **config.get("model_args", {}))
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"{Path(run_dir) / CONFIG} describes no buildable model: {error}"
        ) from None
    path = Path(run_dir) / WEIGHTS
    try:
        arrays, metadata = load_file(path, with_metadata=True)
    except SafetensorsError as error:
        raise CheckpointError(str(error)) from None
    saved_name = metadata.get("convlab_model")
    if saved_name is not None and saved_name != config["model"]:
        raise CheckpointError(
            f"{path} holds weights of model {saved_name!r}, but {CONFIG} asks for "
            f"{config['model']!r}"
        )
    _load_into(model, arrays, str(path))
    return model.eval(), config


def save_resume_state(run_dir, model, optimizer, progress: dict) -> None:
    """Weights, optimiser state and ``progress`` (epoch, history, ...) in one atomic file."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    scalars: dict = {}
    for index, state in opt_state["state"].items():
        for key, value in state.items():
            if isinstance(value, np.ndarray) or hasattr(value, "data"):
                array = value.data if hasattr(value, "data") else value
                tensors[f"optimizer.{index}.{key}"] = np.asarray(array)
            else:
                scalars[f"{index}.{key}"] = value
    metadata = {
        "progress": json.dumps(progress),
        "param_groups": json.dumps(opt_state["param_groups"]),
        "optimizer_scalars": json.dumps(scalars),
    }
    save_file(tensors, Path(run_dir) / RESUME, metadata)


def load_resume_state(run_dir, model, optimizer) -> dict:
    """Restore weights and optimiser state saved by :func:`save_resume_state`; return progress."""
    path = Path(run_dir) / RESUME
    try:
        tensors, metadata = load_file(path, with_metadata=True)
        progress = json.loads(metadata["progress"])
        groups = json.loads(metadata["param_groups"])
        scalars = json.loads(metadata["optimizer_scalars"])
    except SafetensorsError as error:
        raise CheckpointError(str(error)) from None
    except (KeyError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt: bad metadata ({error})") from None
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    _load_into(model, weights, str(path))
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            index, name = key[len("optimizer.") :].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in scalars.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{path}: optimiser state does not fit: {error}") from None
    return progress
