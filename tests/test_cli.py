"""The ``convlab`` command end to end, through subprocesses: the main job and every bad input.

Training runs use a small .npz cut from the shipped digits (or few epochs), so the file stays
within about a minute.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convlab.data import load_mnist5k

CONVLAB = [sys.executable, "-m", "convlab.cli.main"]


def convlab(*args, cwd=None, timeout=300):
    return subprocess.run(
        [*CONVLAB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def assert_clean_error(result, code=2, *fragments):
    """One line on stderr, the exit status, no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    """600 training and 200 test digits from the shipped set, as a user's .npz."""
    split = load_mnist5k()
    path = tmp_path_factory.mktemp("data") / "digits.npz"
    np.savez(
        path,
        x=split.train.inputs[::6, 0],
        y=split.train.targets[::6],
        x_test=split.test.inputs[::5, 0],
        y_test=split.test.targets[::5],
    )
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """LeNet-5 trained for 3 epochs on the shipped digits."""
    out = tmp_path_factory.mktemp("runs") / "lenet"
    result = convlab("train", "--epochs", 3, "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


def test_help_lists_the_commands():
    result = convlab("--help")
    assert result.returncode == 0
    for command in ("train", "evaluate", "predict", "summary"):
        assert command in result.stdout
    assert convlab("train", "--help").returncode == 0


def test_train_writes_a_complete_run_directory(trained_run):
    out, result = trained_run
    assert "epoch   3/3" in result.stdout
    for name in ("config.json", "model.safetensors", "resume.safetensors", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 3 and len(metrics["train_loss"]) == 3
    assert 0.9 < metrics["test_accuracy"] <= 1.0  # three epochs already learn the digits
    assert metrics["train_seconds"] > 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "lenet5" and config["model_args"]["num_classes"] == 10


def test_evaluate_reproduces_the_training_accuracy(trained_run):
    out, _ = trained_run
    metrics = json.loads((out / "metrics.json").read_text())
    result = convlab("evaluate", out, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["test_accuracy"] == metrics["test_accuracy"]
    matrix = np.array(report["confusion_matrix"])
    assert matrix.sum() == 1000 and np.trace(matrix) == round(1000 * report["test_accuracy"])


def test_predict_classifies_a_png_digit(trained_run, tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    out, _ = trained_run
    split = load_mnist5k()
    paths = []
    for label in range(10):  # the first test digit of each class, as a user would save it
        index = int(np.flatnonzero(split.test.targets == label)[0])
        path = tmp_path / f"digit{label}.png"
        pil.fromarray(split.test.inputs[index, 0]).save(path)
        paths.append(path)
    inverted = tmp_path / "inverted.png"  # dark ink on white paper
    pil.fromarray(255 - split.test.inputs[int(np.flatnonzero(split.test.targets == 3)[0]), 0]).save(
        inverted
    )
    result = convlab("predict", out, *paths, inverted)
    assert result.returncode == 0, result.stderr
    predicted = [line.split(": ")[1].split()[0] for line in result.stdout.splitlines()]
    correct = sum(p == str(label) for p, label in zip(predicted, range(10)))
    assert correct >= 9  # a >90 % model on ten clear digits
    assert predicted[10] == "3"


def test_same_seed_same_numbers_and_resume(small_npz, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert convlab("train", "--data", small_npz, "--epochs", 2, "--out", a).returncode == 0
    first = convlab("train", "--data", small_npz, "--epochs", 2, "--until", 1, "--out", b)
    assert first.returncode == 0, first.stderr
    assert "stopped after epoch 1 of 2" in first.stdout
    resumed = convlab("train", "--resume", b)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    ma = json.loads((a / "metrics.json").read_text())
    mb = json.loads((b / "metrics.json").read_text())
    assert ma["train_loss"] == mb["train_loss"]  # one run, or stopped and resumed: same numbers
    assert ma["test_accuracy"] == mb["test_accuracy"]
    again = convlab("train", "--resume", b)
    assert again.returncode == 0 and "already trained 2 of its 2 epochs" in again.stdout
    assert_clean_error(convlab("train", "--resume", b, "--epochs", 5), 2, "planned for 2 epochs")


def test_summary_matches_lenet_arithmetic():
    result = convlab("summary", "lenet5")
    assert result.returncode == 0, result.stderr
    # Parameters: conv1 6*25+6, conv2 16*6*25+16, fc 400*120+120, 120*84+84, 84*10+10.
    assert "total parameters: 61,706" in result.stdout
    # Mult-adds: 6*28*28*25 + 16*10*10*150 + 400*120 + 120*84 + 84*10.
    assert f"total mult-adds:  {117600 + 240000 + 48000 + 10080 + 840:,}" in result.stdout
    assert "16x5x5" in result.stdout  # the shape before flattening


def test_summary_parameter_count_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch 2.13 not installed")
    nn = torch.nn
    reference = nn.Sequential(
        nn.Conv2d(1, 10, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(10, 10, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(10, 10, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(10, 10, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(490, 10),
    )
    count = sum(p.numel() for p in reference.parameters())
    result = convlab("summary", "tinyvgg")
    assert f"total parameters: {count:,}" in result.stdout


# --- bad input and faults ----------------------------------------------------------------------


def test_missing_data_path(tmp_path):
    result = convlab("train", "--data", tmp_path / "nowhere", "--out", tmp_path / "r")
    assert_clean_error(result, 2, "not found")


def test_corrupt_idx(tmp_path):
    data = tmp_path / "idx"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (data / name).write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + b"\0" * 7)
    for name in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (data / name).write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\0" * 10)
    result = convlab("train", "--data", data, "--out", tmp_path / "r")
    assert_clean_error(result, 2, "truncated or corrupt")


def test_images_of_mixed_sizes(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    for label, size in (("a", (8, 8)), ("b", (9, 7))):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        pil.fromarray(np.zeros(size, np.uint8)).save(tmp_path / "imgs" / label / "x.png")
    result = convlab("train", "--data", tmp_path / "imgs", "--out", tmp_path / "r")
    assert_clean_error(result, 2, "mixed sizes")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("--model", "resnet1000"), "invalid choice: 'resnet1000'"),
        (("--batch-size", "0"), "must be a positive integer, got 0"),
        (("--batch-size=-5",), "must be a positive integer"),
        (("--lr", "0"), "must be a positive finite number, got 0"),
        (("--lr=-1e-3",), "must be a positive finite number"),
        (("--epochs", "abc"), "expected a positive integer, got 'abc'"),
    ],
)
def test_bad_training_arguments(tmp_path, args, fragment):
    result = convlab("train", *args, "--out", tmp_path / "r")
    assert_clean_error(result, 2, fragment)
    assert not (tmp_path / "r").exists()


def test_existing_run_is_not_overwritten(trained_run):
    out, _ = trained_run
    before = (out / "model.safetensors").read_bytes()
    result = convlab("train", "--out", out)
    assert_clean_error(result, 2, "already holds a run")
    assert (out / "model.safetensors").read_bytes() == before


def test_checkpoint_of_another_model_and_corrupt_checkpoint(trained_run, tmp_path):
    import shutil

    out, _ = trained_run
    other = tmp_path / "other"
    shutil.copytree(out, other)
    config = json.loads((other / "config.json").read_text())
    config["model"] = "tinyvgg"
    (other / "config.json").write_text(json.dumps(config))
    assert_clean_error(convlab("evaluate", other), 2, "holds weights of model 'lenet5'")
    config["model"] = "lenet5"
    config["model_args"]["num_classes"] = 5
    (other / "config.json").write_text(json.dumps(config))
    assert_clean_error(convlab("evaluate", other), 2, "does not fit this model")
    config["model_args"]["num_classes"] = 10
    (other / "config.json").write_text(json.dumps(config))
    raw = (other / "model.safetensors").read_bytes()
    (other / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    assert_clean_error(convlab("evaluate", other), 2, "truncated or corrupt")
    (other / "config.json").write_text("{not json")
    assert_clean_error(convlab("evaluate", other), 2, "corrupt")
    assert_clean_error(convlab("evaluate", tmp_path), 2, "not a convlab run directory")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(small_npz, tmp_path):
    data_path, out = tmp_path / "digits.npz", tmp_path / "run"
    with np.load(small_npz) as arrays:
        data = {k: arrays[k] for k in arrays.files}
    np.savez(data_path, **data)
    result = convlab("train", "--data", data_path, "--epochs", 2, "--until", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    good = (out / "model.safetensors").read_bytes()
    data["x"] = np.full(data["x"].shape, np.nan, np.float32)  # the data turns bad in epoch 2
    np.savez(data_path, **data)
    result = convlab("train", "--resume", out)
    assert_clean_error(result, 1, "epoch 2, step 1")
    assert (out / "model.safetensors").read_bytes() == good


def test_ctrl_c_leaves_a_resumable_run(small_npz, tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [*CONVLAB, "train", "--data", str(small_npz), "--epochs", "50", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while not (out / "resume.safetensors").exists() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in stderr and f"--resume {out}" in stderr
    done = json.loads((out / "metrics.json").read_text())["epochs"]
    assert done >= 1
    result = convlab("train", "--resume", out, "--until", done + 1)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["epochs"] == done + 1


def test_other_zoo_models_train(tmp_path):
    result = convlab(
        "train", "--model", "cnn1d", "--data", "mnist1d", "--epochs", 2, "--out", tmp_path / "c"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["test_accuracy"] > 0.2
    result = convlab("train", "--model", "autoencoder", "--epochs", 1, "--out", tmp_path / "a")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["test_mse"] < 0.1


def test_wrong_data_for_model(tmp_path):
    result = convlab("train", "--model", "cnn1d", "--out", tmp_path / "r")
    assert_clean_error(result, 2, "cnn1d needs 1-D sequences")
    assert Path(tmp_path / "r").exists() is False
