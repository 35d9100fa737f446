"""The first run's notice while numba compiles convlab's kernels (training's first epoch)."""

from __future__ import annotations

import time

from convlab import training
from convlab.data import load_mnist5k
from convlab.data.datasets import ArrayDataset, Split
from convlab.kernels import _jit


def test_compiling_is_true_only_inside_a_kernels_first_call():
    seen = []
    kernel = _jit._Lazy(lambda: None, parallel=False)
    kernel._compiled = lambda: seen.append(_jit.compiling())  # stands in for numba's dispatcher
    assert not _jit.compiling()
    kernel()
    kernel()
    assert seen == [True, False] and not _jit.compiling()


def test_notice_is_said_once_while_a_kernel_compiles(monkeypatch):
    monkeypatch.setattr(training, "COMPILE_NOTICE_AFTER", 0.01)
    for compiling, expected in ((True, 1), (False, 0)):
        said = []
        monkeypatch.setattr(_jit, "compiling", lambda compiling=compiling: compiling)
        timer = training._compile_notice(said.append)
        timer.join(1.0)
        assert len(said) == expected
        if expected:
            assert "compiling convlab's numba kernels" in said[0] and "first run" in said[0]
    said = []  # cancelled before it fires (the first epoch was quick): nothing
    monkeypatch.setattr(training, "COMPILE_NOTICE_AFTER", 0.5)
    training._compile_notice(said.append).cancel()
    time.sleep(0.6)
    assert said == []


def test_training_says_it_during_a_slow_first_epoch(monkeypatch, tmp_path):
    monkeypatch.setattr(training, "COMPILE_NOTICE_AFTER", 0.0)
    monkeypatch.setattr(_jit, "compiling", lambda: True)
    full = load_mnist5k()
    small = Split(
        full.name,
        ArrayDataset(full.train.inputs[:256], full.train.targets[:256], full.train.classes),
        ArrayDataset(full.test.inputs[:64], full.test.targets[:64], full.test.classes),
    )
    lines = []
    options = training.TrainOptions(epochs=1, out=str(tmp_path / "run"))
    training.train(options, small, log=lines.append)
    notices = [line for line in lines if "compiling convlab's numba kernels" in line]
    assert len(notices) == 1 and any(line.startswith("epoch") for line in lines)
