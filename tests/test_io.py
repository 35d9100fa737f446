"""Safetensors read/write with NumPy alone: round trips, interchange, corrupt files refused."""

import numpy as np
import pytest

from convlab.io import SafetensorsError, load_file, save_file


def sample():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "conv.bias": rng.standard_normal(4),
        "steps": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 3), np.float32),
        "mask": np.array([True, False]),
    }


def test_round_trip_keeps_values_dtypes_and_metadata(tmp_path):
    arrays = sample()
    save_file(arrays, tmp_path / "m.safetensors", {"model": "lenet5"})
    loaded, metadata = load_file(tmp_path / "m.safetensors", with_metadata=True)
    assert metadata == {"model": "lenet5"}
    assert set(loaded) == set(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        np.testing.assert_array_equal(loaded[name], array)


def test_files_interchange_with_the_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="safetensors not installed")
    arrays = sample()
    save_file(arrays, tmp_path / "ours.safetensors")
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    for name, array in arrays.items():
        np.testing.assert_array_equal(theirs[name], array)
    st.save_file(arrays, str(tmp_path / "theirs.safetensors"), metadata={"a": "b"})
    ours, metadata = load_file(tmp_path / "theirs.safetensors", with_metadata=True)
    assert metadata == {"a": "b"}
    for name, array in arrays.items():
        np.testing.assert_array_equal(ours[name], array)


@pytest.mark.parametrize("cut", [0, 5, 8, 40, -1])
def test_truncated_files_are_refused(tmp_path, cut):
    path = tmp_path / "m.safetensors"
    save_file(sample(), path)
    raw = path.read_bytes()
    path.write_bytes(raw[:cut] if cut >= 0 else raw[:-3])
    with pytest.raises(SafetensorsError, match="truncated|corrupt"):
        load_file(path)


def test_corrupt_header_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    header = b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)
    with pytest.raises(SafetensorsError, match="'w'"):
        load_file(path)
    path.write_bytes((10).to_bytes(8, "little") + b"not json!!")
    with pytest.raises(SafetensorsError, match="corrupt header"):
        load_file(path)


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"a": np.ones(3)}, path)
    with pytest.raises(TypeError):
        save_file({"a": np.array(["text"])}, path)  # unsupported dtype: fails before writing
    np.testing.assert_array_equal(load_file(path)["a"], np.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(SafetensorsError, match="nothing.safetensors"):
        load_file(tmp_path / "nothing.safetensors")


def test_bfloat16_from_torch_loads_as_float32(tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch 2.13 not installed")
    st = pytest.importorskip("safetensors.torch", reason="safetensors not installed")
    values = torch.tensor([[1.5, -2.25], [3.0e5, 1.0e-3]], dtype=torch.bfloat16)
    st.save_file({"w": values}, str(tmp_path / "bf16.safetensors"))
    loaded = load_file(tmp_path / "bf16.safetensors")["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values.float().numpy())
