"""``convlab viz DIR``: kernels, feature maps and confusion matrix of a trained run.

A LeNet-5 trained for one epoch on a small .npz cut from the shipped digits (a few seconds).
The feature maps are checked against the layers applied by hand (and PyTorch, where installed).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import convlab as cl
import convlab.nn.functional as F
from convlab import nn
from convlab.data import Normalize, load_mnist5k

pytest.importorskip("matplotlib", reason="matplotlib not installed: pip install 'convlab[viz]'")
pil = pytest.importorskip("PIL.Image", reason="Pillow not installed: pip install 'convlab[viz]'")

from convlab.viz import model_pictures  # noqa: E402

CONVLAB = [sys.executable, "-m", "convlab.cli.main"]


def convlab(*args, cwd=None):
    return subprocess.run(
        [*CONVLAB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """LeNet-5 after one epoch on 600 training / 200 test digits."""
    split = load_mnist5k()
    root = tmp_path_factory.mktemp("viz")
    data = root / "digits.npz"
    np.savez(
        data,
        x=split.train.inputs[::6, 0],
        y=split.train.targets[::6],
        x_test=split.test.inputs[::5, 0],
        y_test=split.test.targets[::5],
    )
    out = root / "lenet"
    result = convlab("train", "--data", data, "--epochs", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def _png_size(path):
    with pil.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_viz_writes_the_three_pictures(run_dir):
    result = convlab("viz", run_dir)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.split()
    names = ["kernels.png", "feature_maps.png", "confusion.png"]
    assert printed == [str(run_dir / name) for name in names]
    for name in names:
        width, height = _png_size(run_dir / name)
        assert width > 200 and height > 150, name
    # Six 5x5 filters on one input channel: two rows of three tiles, taller than a strip.
    tiles, rows, cols, _ = model_pictures._as_tiles(np.zeros((6, 1, 5, 5)))
    assert (rows, cols) == (2, 3) and tiles.shape == (2, 3, 5, 5)


def _model_and_input(run_dir):
    from convlab.io.checkpoint import load_model

    model, config = load_model(run_dir)
    raw = load_mnist5k().test.inputs[::5][0]  # the run's first test image
    x = Normalize.from_dict(config["normalize"])(raw[None])[0]
    return model, x


def test_feature_maps_are_each_conv_after_its_activation(run_dir):
    model, x = _model_and_input(run_dir)
    maps = model_pictures.feature_maps(model, x)
    assert [m.name for m in maps] == ["0 Conv2d + 1 ReLU", "3 Conv2d + 4 ReLU"]
    conv1, conv2 = model[0], model[3]
    with cl.no_grad():
        a1 = F.relu(F.conv2d(x[None], conv1.weight, conv1.bias, padding=2))
        a2 = F.relu(F.conv2d(F.max_pool2d(a1, 2), conv2.weight, conv2.bias))
    np.testing.assert_array_equal(maps[0].array, a1.numpy()[0])
    np.testing.assert_array_equal(maps[1].array, a2.numpy()[0])
    assert maps[0].array.shape == (6, 28, 28) and maps[1].array.shape == (16, 10, 10)


def test_feature_maps_match_pytorch(run_dir, torch):
    model, x = _model_and_input(run_dir)
    maps = model_pictures.feature_maps(model, x)
    t = torch.nn.functional
    conv1, conv2 = model[0], model[3]
    xt = torch.tensor(x[None])

    def weights(conv):
        return torch.tensor(conv.weight.data), torch.tensor(conv.bias.data)

    a1 = t.relu(t.conv2d(xt, *weights(conv1), padding=2))
    a2 = t.relu(t.conv2d(t.max_pool2d(a1, 2), *weights(conv2)))
    np.testing.assert_allclose(maps[0].array, a1[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maps[1].array, a2[0].numpy(), rtol=1e-4, atol=1e-5)


def test_viz_of_a_given_image_into_another_folder(run_dir, tmp_path):
    digit = load_mnist5k().test.inputs[3, 0]
    path = tmp_path / "digit.png"
    pil.fromarray(255 - digit).save(path)  # dark ink on white paper, as predict accepts
    out = tmp_path / "pictures"
    out.mkdir()
    result = convlab("viz", run_dir, "--image", path, "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion.png",
        "feature_maps.png",
        "kernels.png",
    ]


def test_kernel_pictures_for_several_input_channels_and_1d(tmp_path):
    tiles, rows, cols, layout = model_pictures._as_tiles(np.ones((4, 3, 3, 3)))
    assert (rows, cols) == (4, 3) and "columns: input channels" in layout
    assert _png_size(model_pictures.save_kernels(np.ones((4, 3, 3, 3)), tmp_path / "a.png"))
    assert _png_size(model_pictures.save_kernels(np.ones((8, 2, 5)), tmp_path / "b.png"))


def test_a_model_without_convolutions_is_refused(run_dir, monkeypatch, capsys):
    dense = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(ValueError, match="no convolutional layer"):
        model_pictures.feature_maps(dense, np.zeros((1, 28, 28), np.float32))
    import convlab.io.checkpoint as checkpoint
    from convlab.cli.main import main

    config = json.loads((run_dir / "config.json").read_text())
    monkeypatch.setattr(checkpoint, "load_model", lambda path: (dense, config))
    assert main(["viz", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no convolutional layer" in err[0]


def test_bad_input(run_dir, tmp_path):
    assert_clean_error(convlab("viz", tmp_path), "not a convlab run directory")
    garbage = tmp_path / "broken.png"
    garbage.write_bytes(b"not an image at all")
    assert_clean_error(convlab("viz", run_dir, "--image", garbage), "cannot read image")
    assert_clean_error(
        convlab("viz", run_dir, "--image", tmp_path / "missing.png"), "cannot read image"
    )
    assert_clean_error(convlab("viz", run_dir, "--index", 5000), "past the end")
