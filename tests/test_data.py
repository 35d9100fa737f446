"""Data sets and the loader: the shipped digits, IDX files, .npz, image folders, batching."""

import gzip

import numpy as np
import pytest

from convlab.data import (
    DataError,
    DataLoader,
    Normalize,
    load_dataset,
    load_idx,
    load_mnist5k,
    load_npz,
    random_shift,
    read_idx,
)


def test_mnist5k_is_stratified_4000_1000():
    split = load_mnist5k()
    assert split.train.inputs.shape == (4000, 1, 28, 28)
    assert split.test.inputs.shape == (1000, 1, 28, 28)
    assert split.train.inputs.dtype == np.uint8
    assert np.bincount(split.train.targets).tolist() == [400] * 10
    assert np.bincount(split.test.targets).tolist() == [100] * 10
    # Real digits: mostly background, some ink, no two test images identical to a train image.
    assert 0.1 < (split.train.inputs > 0).mean() < 0.3
    train_rows = {row.tobytes() for row in split.train.inputs[:500]}
    assert not any(row.tobytes() in train_rows for row in split.test.inputs)


def write_idx(path, array, compress=False):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim])
    header += b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    raw = header + array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_directory_loads(tmp_path, compress):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    train_x = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", train_x, compress)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(6, dtype=np.uint8), compress)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", train_x[:2], compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", np.arange(2, dtype=np.uint8), compress)
    split = load_dataset(str(tmp_path))
    np.testing.assert_array_equal(split.train.inputs[:, 0], train_x)
    assert split.test.targets.tolist() == [0, 1]


def test_truncated_idx_is_refused(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((3, 4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated or corrupt"):
        read_idx(path)
    path.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)
    write_idx(path, np.zeros((3, 4, 4), np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="no t10k-images"):
        load_idx(tmp_path)


def test_npz_with_and_without_test_part(tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.random((50, 8, 8)).astype(np.float32), np.repeat(np.arange(5), 10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    split = load_npz(tmp_path / "d.npz")
    assert len(split.train) == 40 and len(split.test) == 10
    assert np.bincount(split.test.targets).tolist() == [2] * 5
    np.savez(tmp_path / "e.npz", x=x, y=y, x_test=x[:3], y_test=y[:3])
    assert len(load_npz(tmp_path / "e.npz").test) == 3
    np.savez(tmp_path / "bad.npz", inputs=x)
    with pytest.raises(DataError, match="must contain arrays 'x' and 'y'"):
        load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([object()]), y=np.zeros(1, int))
    with pytest.raises(DataError, match="cannot read"):
        load_npz(tmp_path / "obj.npz")  # object arrays would need pickle: refused


def test_missing_data_path_names_the_choices(tmp_path):
    with pytest.raises(DataError, match="not found: give 'mnist-5k'"):
        load_dataset(str(tmp_path / "nowhere"))


def test_image_folder_with_mixed_sizes(tmp_path):
    pil = pytest.importorskip("PIL.Image", reason="Pillow not installed")
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(3):
            pil.fromarray(np.full((6, 6), 40 * i, np.uint8)).save(tmp_path / label / f"{i}.png")
    split = load_dataset(str(tmp_path))
    assert split.train.classes == ["a", "b"]
    assert split.train.inputs.shape[1:] == (1, 6, 6)
    pil.fromarray(np.zeros((5, 7), np.uint8)).save(tmp_path / "a" / "odd.png")
    with pytest.raises(DataError, match="mixed sizes"):
        load_dataset(str(tmp_path))
    from convlab.data import load_image_folder

    resized = load_image_folder(tmp_path, size=(8, 8))
    assert resized.train.inputs.shape[1:] == (1, 8, 8)


def test_loader_batches_shuffles_reproducibly_and_normalises():
    split = load_mnist5k()
    norm = Normalize.fit(split.train.inputs)
    loader = DataLoader(split.train, batch_size=128, shuffle=True, seed=3, normalize=norm)
    assert len(loader) == 32
    batches = list(loader)
    assert sum(len(y.numpy()) for _, y in batches) == 4000
    x, y = batches[0]
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (128, 1, 28, 28)
    again = DataLoader(split.train, batch_size=128, shuffle=True, seed=3, normalize=norm)
    np.testing.assert_array_equal(next(iter(again))[1].numpy(), y.numpy())
    second_epoch = next(iter(loader))[1].numpy()
    assert not np.array_equal(second_epoch, y.numpy())  # a new order each epoch
    all_x = norm(split.train.inputs)
    assert abs(all_x.mean()) < 1e-3 and abs(all_x.std() - 1) < 1e-3
    with pytest.raises(ValueError, match="batch_size must be a positive integer, but got 0"):
        DataLoader(split.train, batch_size=0)


def test_random_shift_moves_content_without_changing_it():
    x = np.zeros((50, 2, 9, 9), np.float32)
    x[:, :, 4, 4] = 1.0
    shifted = random_shift(x, 2, np.random.default_rng(0))
    assert shifted.shape == x.shape and shifted.sum() == x.sum()
    rows, cols = np.nonzero(shifted[:, 0].sum(axis=0))
    assert rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    np.testing.assert_array_equal(shifted[:, 0], shifted[:, 1])  # channels move together
    np.testing.assert_array_equal(random_shift(x, 0, np.random.default_rng(0)), x)


@pytest.mark.parametrize("shape", [(7, 3, 6, 5), (4, 2, 9), (3, 2, 4, 5, 3), (1, 1, 1, 1)])
@pytest.mark.parametrize("max_shift", [1, 3])
def test_random_shift_takes_each_items_window_of_the_padded_batch(shape, max_shift):
    """The definition, item by item: the window of the zero-padded item at its drawn offset."""
    x = np.random.default_rng(1).integers(0, 255, shape).astype(np.uint8)
    got = random_shift(x, max_shift, np.random.default_rng(5))
    spatial = shape[2:]
    offsets = np.random.default_rng(5).integers(0, 2 * max_shift + 1, (shape[0], len(spatial)))
    padded = np.pad(x, [(0, 0), (0, 0)] + [(max_shift, max_shift)] * len(spatial))
    for i, offset in enumerate(offsets):
        window = tuple(slice(o, o + s) for o, s in zip(offset, spatial))
        np.testing.assert_array_equal(got[i], padded[(i, slice(None), *window)])
    assert got.dtype == x.dtype and got.shape == x.shape
