"""The training loop behind ``convlab train``: epochs, evaluation, checkpoints, resume.

Classification models learn with cross-entropy; the autoencoder learns to reconstruct its input
with the mean squared error. After every epoch the run directory gets a consistent checkpoint,
so an interrupted run resumes where it stopped and a run that diverges keeps its last good one.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import convlab as cl
import convlab.nn.functional as F
from convlab import optim
from convlab.data import DataLoader, Normalize, Split
from convlab.io import checkpoint
from convlab.kernels import _jit

__all__ = ["DivergedError", "TrainOptions", "evaluate", "predict_batches", "train"]

OPTIMIZERS = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD, "rmsprop": optim.RMSprop}


class DivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainOptions:
    model: str = "lenet5"
    data: str = "mnist-5k"
    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    optimizer: str = "adam"
    seed: int = 0
    max_shift: int = 2
    out: str = "runs/latest"
    until: int | None = None  # stop after this epoch (resumable), None: all of them
    model_args: dict = field(default_factory=dict)


# Recipes that differ from TrainOptions' defaults (measured: see the README's results table).
MODEL_DEFAULTS = {"cnn1d": {"epochs": 60, "lr": 1e-2}}


def is_reconstruction(model_name: str) -> bool:
    return model_name == "autoencoder"


class Progress:
    """A one-line progress bar on stderr (only where stderr is a terminal)."""

    def __init__(self, total: int, prefix: str, stream=None) -> None:
        self.total, self.prefix = total, prefix
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.start = time.perf_counter()

    def update(self, done: int, text: str) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * done / max(self.total, 1))
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.prefix} [{bar}] {done}/{self.total} {text}   ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 100 + "\r")
            self.stream.flush()


# Seconds into the first epoch after which a kernel still in its first call is compiling.
COMPILE_NOTICE_AFTER = 1.0


def _compile_notice(log) -> threading.Timer:
    """A timer that says, once, why the first epoch is slow when numba is compiling convlab's
    kernels (a first run: about 7 s for LeNet's); cancel it after the first epoch."""

    def say() -> None:
        if _jit.compiling():
            log("(compiling convlab's numba kernels: first run only, they are cached on disk)")

    timer = threading.Timer(COMPILE_NOTICE_AFTER, say)
    timer.daemon = True
    timer.start()
    return timer


def _loss(model_name: str, output, x, y, normalize: Normalize):
    """Cross-entropy for classifiers; for the autoencoder, MSE against the input's pixels."""
    if is_reconstruction(model_name):
        return F.mse_loss(output, cl.Tensor(_unit_range(x, normalize)))
    return F.cross_entropy(output, y)


def predict_batches(model, dataset, normalize: Normalize, batch_size: int = 500):
    """Model outputs (as NumPy) over a data set, in order, without gradients."""
    loader = DataLoader(dataset, batch_size=batch_size, normalize=normalize)
    outputs = []
    with cl.no_grad():
        for x, _ in loader:
            outputs.append(model(x).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0,))


def evaluate(model, dataset, normalize: Normalize, model_name: str = "lenet5") -> dict:
    """Test metrics: accuracy and loss for classifiers, mean squared error for autoencoders."""
    model.eval()
    if is_reconstruction(model_name):
        loader = DataLoader(dataset, batch_size=500, normalize=normalize)
        total, count = 0.0, 0
        with cl.no_grad():
            for x, _ in loader:
                target = _unit_range(x, normalize)
                total += float(((model(x).numpy() - target) ** 2).sum())
                count += target.size
        return {"test_mse": total / max(count, 1)}
    logits = predict_batches(model, dataset, normalize)
    predictions = logits.argmax(axis=1)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(dataset)), dataset.targets].mean()
    return {
        "test_accuracy": float((predictions == dataset.targets).mean()),
        "test_loss": float(loss),
        "predictions": predictions,
    }


def _unit_range(x, normalize: Normalize) -> np.ndarray:
    """Undo the normalisation: the autoencoder reconstructs pixels in [0, 1]."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x.numpy() * normalize.std.reshape(shape) + normalize.mean.reshape(shape)


def train(options: TrainOptions, split: Split, resume: bool = False, log=print) -> dict:
    """Train (or resume) a model on ``split``; write checkpoints to ``options.out``; return metrics.

    Raises :class:`DivergedError` if the loss stops being finite (the last checkpoint is kept).
    """
    from convlab.models import build_model

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    cl.manual_seed(options.seed)
    train_set, test_set = split.train, split.test
    model_args = {
        "in_channels": train_set.input_shape[0],
        "num_classes": train_set.num_classes,
        "input_size": list(train_set.input_shape[1:]),
        **options.model_args,
    }
    model = build_model(options.model, **model_args)
    optimizer = OPTIMIZERS[options.optimizer](model.parameters(), lr=options.lr)
    normalize = Normalize.fit(train_set.inputs)
    shift = options.max_shift if len(train_set.input_shape) == 3 else 0
    loader = DataLoader(
        train_set,
        options.batch_size,
        shuffle=True,
        seed=options.seed,
        normalize=normalize,
        max_shift=shift,
    )
    steps_per_epoch = len(loader)
    scheduler = optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=options.lr, epochs=options.epochs, steps_per_epoch=steps_per_epoch
    )
    config = {
        "model": options.model,
        "model_args": model_args,
        "data": options.data,
        "classes": train_set.classes,
        "normalize": normalize.to_dict(),
        "task": "reconstruct" if is_reconstruction(options.model) else "classify",
        "training": {
            "epochs": options.epochs,
            "batch_size": options.batch_size,
            "lr": options.lr,
            "optimizer": options.optimizer,
            "seed": options.seed,
            "max_shift": shift,
            "schedule": "one-cycle",
        },
    }
    history: list[dict] = []
    start_epoch, elapsed = 0, 0.0
    if resume:
        progress = checkpoint.load_resume_state(out, model, optimizer)
        history = progress["history"]
        start_epoch = progress["epoch"]
        elapsed = progress["train_seconds"]
        scheduler.load_state_dict(progress["scheduler"])
        log(f"resuming {out} at epoch {start_epoch + 1}/{options.epochs}")
    checkpoint.save_json(out / checkpoint.CONFIG, config)

    last_epoch = min(options.until or options.epochs, options.epochs)
    if start_epoch >= last_epoch:
        log(f"{out} has already trained {start_epoch} of its {options.epochs} epochs")
    notice = _compile_notice(log)  # on a first run, numba compiles during the first steps
    for epoch in range(start_epoch, last_epoch):
        model.train()
        loader.set_epoch(epoch)
        bar = Progress(steps_per_epoch, f"epoch {epoch + 1}/{options.epochs}")
        started = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for step, (x, y) in enumerate(loader, start=1):
            output = model(x)
            loss = _loss(options.model, output, x, y, normalize)
            value = float(loss.item())
            if not math.isfinite(value):
                bar.close()
                notice.cancel()
                raise DivergedError(
                    f"loss became {value} at epoch {epoch + 1}, step {step}; the checkpoint "
                    f"of epoch {epoch} in {out} is kept (try a smaller --lr)"
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            n = len(y.data)
            loss_sum += value * n
            seen += n
            if not is_reconstruction(options.model):
                correct += int((output.data.argmax(axis=1) == y.data).sum())
            rate = seen / (time.perf_counter() - started)
            bar.update(
                step,
                f"loss {loss_sum / seen:.4f}"
                + ("" if is_reconstruction(options.model) else f" acc {100 * correct / seen:.1f}%")
                + f" {rate:,.0f} img/s",
            )
        bar.close()
        notice.cancel()
        seconds = time.perf_counter() - started
        elapsed += seconds
        metrics = evaluate(model, test_set, normalize, options.model)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / seen, "seconds": seconds}
        if is_reconstruction(options.model):
            record["test_mse"] = metrics["test_mse"]
            log(
                f"epoch {epoch + 1:3d}/{options.epochs}  loss {record['train_loss']:.5f}  "
                f"test mse {metrics['test_mse']:.5f}  {seconds:.1f}s"
            )
        else:
            record.update(
                train_accuracy=correct / seen,
                test_accuracy=metrics["test_accuracy"],
                test_loss=metrics["test_loss"],
            )
            log(
                f"epoch {epoch + 1:3d}/{options.epochs}  loss {record['train_loss']:.4f}  "
                f"train {100 * record['train_accuracy']:.2f}%  "
                f"test {100 * record['test_accuracy']:.2f}%  "
                f"{seen / seconds:,.0f} img/s  {seconds:.1f}s"
            )
        history.append(record)
        checkpoint.save_weights(out, model, options.model)
        checkpoint.save_resume_state(
            out,
            model,
            optimizer,
            {
                "epoch": epoch + 1,
                "history": history,
                "train_seconds": elapsed,
                "scheduler": scheduler.state_dict(),
            },
        )
        summary = _summary(history, elapsed, options)
        checkpoint.save_json(out / checkpoint.METRICS, summary)
    return _summary(history, elapsed, options)


def _summary(history: list[dict], elapsed: float, options: TrainOptions) -> dict:
    last = history[-1] if history else {}
    summary = {
        "model": options.model,
        "data": options.data,
        "epochs": len(history),
        "train_seconds": elapsed,
        "train_loss": [h["train_loss"] for h in history],
        "history": history,
    }
    if "test_accuracy" in last:
        summary["test_accuracy"] = last["test_accuracy"]
        summary["train_accuracy"] = [h["train_accuracy"] for h in history]
        summary["test_accuracy_per_epoch"] = [h["test_accuracy"] for h in history]
    if "test_mse" in last:
        summary["test_mse"] = last["test_mse"]
    return summary
