"""PyTorch weights in and out of convlab: the restricted ``torch.save`` reader and the helpers.

The first half needs no torch: checkpoints are written by hand (a zip with a pickle assembled
opcode by opcode), so every accepted layout and every refusal is pinned down exactly. The second
half (the ``torch`` fixture; skipped without PyTorch) uses files written by ``torch.save``: the
model zoo trained in torch and loaded into convlab gives the same outputs, convlab's safetensors
load into torch, and real malicious checkpoints are refused.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import convlab as cl
from convlab import models, nn
from convlab.io import (
    CheckpointError,
    UnsafeCheckpointError,
    load_torch_checkpoint,
    load_torch_state_dict,
    load_weights,
    save_weights,
)

# -- a torch.save zip written by hand ------------------------------------------------------------


def op_str(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE


def op_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)  # BININT


def op_global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()  # GLOBAL


def op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def op_dict(entries: dict[str, bytes]) -> bytes:
    return b"}(" + b"".join(op_str(k) + v for k, v in entries.items()) + b"u"  # SETITEMS


def op_ordered_dict() -> bytes:
    return op_global("collections", "OrderedDict") + b")R"  # OrderedDict()


def op_tensor(key, numel, offset, size, stride, storage="FloatStorage") -> bytes:
    """What torch.save writes for one tensor: _rebuild_tensor_v2 on a persistent storage id."""
    pid = op_tuple(
        op_str("storage"), op_global("torch", storage), op_str(key), op_str("cpu"), op_int(numel)
    )
    args = op_tuple(
        pid + b"Q",  # BINPERSID
        op_int(offset),
        op_tuple(*map(op_int, size)),
        op_tuple(*map(op_int, stride)),
        b"\x89",  # requires_grad=False
        op_ordered_dict(),  # backward hooks
    )
    return op_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def write_checkpoint(path, body: bytes, storages=None, byteorder=b"little", drop=()):
    """A zip laid out as torch.save lays it out, with ``body`` as the pickled object."""
    records = {"data.pkl": b"\x80\x02" + body + b".", "byteorder": byteorder, "version": b"3\n"}
    records.update({f"data/{key}": data for key, data in (storages or {}).items()})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records.items():
            if name not in drop:
                zf.writestr(f"archive/{name}", data)
    return path


def arange_checkpoint(path, **options):
    """{"w": arange(6) as a (2, 3) float32 tensor}."""
    body = op_dict({"w": op_tensor("0", 6, 0, (2, 3), (3, 1))})
    return write_checkpoint(path, body, {"0": np.arange(6, dtype="<f4").tobytes()}, **options)


# -- what the reader accepts ---------------------------------------------------------------------


def test_views_offsets_and_shared_storages_are_rebuilt(tmp_path):
    # Six tensors viewing one 24-element storage, as torch.save writes views of one tensor.
    body = op_dict(
        {
            "whole": op_tensor("0", 24, 0, (4, 6), (6, 1)),
            "transposed": op_tensor("0", 24, 0, (6, 4), (1, 6)),
            "strided": op_tensor("0", 24, 5, (3, 2), (1, 6)),
            "expanded": op_tensor("0", 24, 2, (3, 2), (0, 1)),
            "scalar": op_tensor("0", 24, 23, (), ()),
            "empty": op_tensor("0", 24, 24, (0, 3), (3, 1)),
        }
    )
    path = write_checkpoint(tmp_path / "v.pt", body, {"0": np.arange(24, dtype="<f4").tobytes()})
    got = load_torch_checkpoint(path)
    expected = {
        "whole": [[6 * i + j for j in range(6)] for i in range(4)],
        "transposed": [[i + 6 * j for j in range(4)] for i in range(6)],
        "strided": [[5 + i + 6 * j for j in range(2)] for i in range(3)],
        "expanded": [[2 + j for j in range(2)] for _ in range(3)],
        "scalar": 23,
        "empty": np.zeros((0, 3)),
    }
    assert list(got) == list(expected)
    for name, values in expected.items():
        values = np.asarray(values, dtype=np.float32)
        assert got[name].dtype == np.float32 and got[name].shape == values.shape, name
        np.testing.assert_array_equal(got[name], values)
    # Each tensor is its own writable copy: changing one changes no other.
    got["whole"][0, 0] = 100
    assert got["transposed"][0, 0] == 0 and got["expanded"][0, 0] == 2


STORAGE_DTYPES = [
    ("FloatStorage", "f4", np.float32),
    ("DoubleStorage", "f8", np.float64),
    ("HalfStorage", "f2", np.float16),
    ("LongStorage", "i8", np.int64),
    ("IntStorage", "i4", np.int32),
    ("ShortStorage", "i2", np.int16),
    ("CharStorage", "i1", np.int8),
    ("ByteStorage", "u1", np.uint8),
    ("BoolStorage", "u1", np.bool_),
]


@pytest.mark.parametrize("order", ["little", "big"])
@pytest.mark.parametrize("storage, stored, dtype", STORAGE_DTYPES)
def test_every_storage_type_in_either_byte_order(tmp_path, storage, stored, dtype, order):
    values = {np.bool_: [1, 0, 1, 1], np.uint8: [253, 0, 1, 100]}.get(dtype, [-3, 0, 1, 100])
    raw = np.array(values, dtype=np.dtype(stored).newbyteorder("<" if order == "little" else ">"))
    body = op_dict({"t": op_tensor("7", 4, 0, (2, 2), (1, 2), storage)})
    path = tmp_path / "t.pt"
    write_checkpoint(path, body, {"7": raw.tobytes()}, byteorder=order.encode())
    got = load_torch_checkpoint(path)["t"]
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, np.array(values, dtype=dtype).reshape(2, 2).T)


@pytest.mark.parametrize("order", ["<", ">"])
def test_bfloat16_becomes_float32(tmp_path, order):
    bits = np.array([0x3F80, 0xC000, 0x3F00, 0x4049, 0x0000, 0xFF80], dtype=f"{order}u2")
    body = op_dict({"t": op_tensor("0", 6, 0, (6,), (1,), "BFloat16Storage")})
    path = tmp_path / "b.pt"
    byteorder = b"little" if order == "<" else b"big"
    write_checkpoint(path, body, {"0": bits.tobytes()}, byteorder=byteorder)
    got = load_torch_checkpoint(path)["t"]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [1.0, -2.0, 0.5, 3.140625, 0.0, -np.inf])


def test_state_dict_metadata_and_plain_containers(tmp_path):
    # Module.state_dict() pickles an OrderedDict and then BUILDs its _metadata attribute.
    metadata = op_ordered_dict() + b"(" + op_str("") + op_dict({}) + b"u"
    state = (
        op_ordered_dict()
        + b"("
        + op_str("w")
        + op_tensor("0", 6, 0, (6,), (1,))
        + b"u"
        + op_dict({"_metadata": metadata})
        + b"b"  # BUILD
    )
    extras = op_tuple(
        op_int(3), b"N", b"\x88", b"G" + struct.pack(">d", 0.25), b"]" + op_int(1) + b"a"
    )
    body = op_dict({"model": state, "extras": extras})
    path = write_checkpoint(tmp_path / "s.pt", body, {"0": np.arange(6, dtype="<f4").tobytes()})
    got = load_torch_checkpoint(path)
    assert got["extras"] == (3, None, True, 0.25, [1])
    assert got["model"]._metadata == {"": {}}
    np.testing.assert_array_equal(load_torch_state_dict(path)["w"], np.arange(6))


def test_unpicking_a_nested_state_dict(tmp_path):
    body = op_dict({"epoch": op_int(3), "model": op_dict({"w": op_tensor("0", 6, 0, (6,), (1,))})})
    path = write_checkpoint(tmp_path / "n.pt", body, {"0": np.arange(6, dtype="<f4").tobytes()})
    assert list(load_torch_state_dict(path)) == ["w"]
    with pytest.raises(CheckpointError, match="no entry 'weights'.*'epoch', 'model'"):
        load_torch_state_dict(path, key="weights")
    with pytest.raises(CheckpointError, match="entry 'epoch' is a int, not a state_dict"):
        load_torch_state_dict(path, key="epoch")


def test_several_state_dicts_need_a_key(tmp_path):
    tensor = op_tensor("0", 6, 0, (6,), (1,))
    body = op_dict({"generator": op_dict({"w": tensor}), "critic": op_dict({"v": tensor})})
    path = write_checkpoint(tmp_path / "g.pt", body, {"0": np.arange(6, dtype="<f4").tobytes()})
    with pytest.raises(CheckpointError, match="several state_dicts.*generator, critic.*key="):
        load_torch_state_dict(path)
    assert list(load_torch_state_dict(path, key="critic")) == ["v"]
    body = op_dict({"epoch": op_int(3), "lr": op_int(1)})
    with pytest.raises(CheckpointError, match="no state_dict"):
        load_torch_state_dict(write_checkpoint(tmp_path / "e.pt", body))


# -- what the reader refuses: code, and anything it cannot vouch for -----------------------------


class SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'echo pwned > "{self.marker}"',)


class EvalCall(SystemCall):
    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


class PopenCall(SystemCall):
    def __reduce__(self):
        code = f"open({str(self.marker)!r}, 'w').close()"
        return subprocess.Popen, ([sys.executable, "-c", code],)


class Unknown:
    """A plain class: pickled as its global name, then NEWOBJ and BUILD."""

    def __init__(self, marker):
        self.marker = str(marker)


PAYLOADS = {
    "os.system": (SystemCall, r"global (posix|nt)\.system"),
    "builtins.eval": (EvalCall, r"global builtins\.eval"),
    "subprocess.Popen": (PopenCall, r"global subprocess\.Popen"),
    "unknown class": (Unknown, r"global [\w.]*test_torch_interchange\.Unknown"),
}


@pytest.mark.parametrize("name", PAYLOADS)
def test_pickled_code_is_refused_and_never_runs(tmp_path, name):
    kind, refused = PAYLOADS[name]
    marker = tmp_path / "pwned"
    payload = pickle.dumps(kind(marker), protocol=2)
    if kind is not Unknown:  # the payload is live: an ordinary unpickler runs it
        result = pickle.loads(payload)
        if isinstance(result, subprocess.Popen):
            result.wait()
        assert marker.exists()
        marker.unlink()
    body = op_dict({"w": op_tensor("0", 6, 0, (6,), (1,)), "evil": payload[2:-1]})
    path = write_checkpoint(tmp_path / "evil.pt", body, {"0": bytes(24)})
    for load in (load_torch_checkpoint, load_torch_state_dict):
        with pytest.raises(UnsafeCheckpointError, match=refused):
            load(path)
    model = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(UnsafeCheckpointError, match="nothing in a checkpoint is ever run"):
        load_weights(model, path)
    assert not marker.exists()


ATTACKS = {
    "NEWOBJ": (op_global("collections", "OrderedDict") + b")\x81", "opcode NEWOBJ"),
    "OBJ": (b"(" + op_global("collections", "OrderedDict") + b"o", "opcode OBJ"),
    "INST": (b"(" + op_str("echo") + b"ios\nsystem\n", "opcode INST"),
    "EXT1": (b"\x82\x01", "opcode EXT1"),
    "STACK_GLOBAL": (op_str("builtins") + op_str("getattr") + b"\x93", r"builtins\.getattr"),
    "torch.load": (op_global("torch", "load"), r"global torch\.load"),
    "quantized storage": (op_tensor("0", 6, 0, (6,), (1,), "QInt8Storage"), "QInt8Storage"),
    "call a storage type": (op_global("torch", "FloatStorage") + b")R", "a call to torch.Float"),
    "BUILD a function": (
        op_global("torch._utils", "_rebuild_tensor_v2") + op_dict({"__doc__": b"N"}) + b"b",
        "setting the state of a function",
    ),
    "BUILD another attribute": (
        op_ordered_dict() + op_dict({"items": op_int(1)}) + b"b",
        "setting the state of a OrderedDict",
    ),
    "foreign persistent id": (op_tuple(op_str("module"), op_str("x")) + b"Q", "persistent id"),
    "APPEND to a dict": (b"}" + op_int(1) + b"a", "updating a dict as if it were a list"),
    "SETITEM on a tuple": (b")" + op_int(1) + op_int(2) + b"s", "updating a tuple as if"),
}


@pytest.mark.parametrize("name", ATTACKS)
def test_crafted_pickles_are_refused(tmp_path, name):
    body, refused = ATTACKS[name]
    path = write_checkpoint(tmp_path / "x.pt", body, {"0": bytes(6)})
    with pytest.raises(UnsafeCheckpointError, match=refused):
        load_torch_checkpoint(path)


# -- broken files: a clear error, never a traceback from deep inside -----------------------------


@pytest.mark.parametrize("cut", [0, 10, 200, -30, -1])
def test_truncated_files_are_refused(tmp_path, cut):
    path = arange_checkpoint(tmp_path / "t.pt")
    raw = path.read_bytes()
    path.write_bytes(raw[:cut])
    with pytest.raises(CheckpointError, match=r"truncated or corrupt|is empty"):
        load_torch_state_dict(path)


def test_corrupt_record_fails_its_checksum(tmp_path):
    path = arange_checkpoint(tmp_path / "c.pt")
    raw = bytearray(path.read_bytes())
    at = raw.index(np.arange(6, dtype="<f4").tobytes())
    raw[at + 5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(
        CheckpointError, match=r"truncated or corrupt: cannot read 'archive/data/0'"
    ):
        load_torch_state_dict(path)


@pytest.mark.parametrize(
    "pickle_bytes, message",
    [
        (b"\x80\x02}(X\x01\x00\x00\x00w", "corrupt: cannot read data.pkl"),  # cut short
        (b"\x80\x02h\x05.", "corrupt: cannot read data.pkl"),  # memo entry never stored
        (b"\x80\x02\xff.", r"unknown pickle opcode b'\\xff'"),
    ],
)
def test_corrupt_pickles_are_refused(tmp_path, pickle_bytes, message):
    path = tmp_path / "p.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle_bytes)
    with pytest.raises(CheckpointError, match=message):
        load_torch_checkpoint(path)


def test_missing_records_are_named(tmp_path):
    path = arange_checkpoint(tmp_path / "m.pt", drop=("data/0",))
    with pytest.raises(
        CheckpointError, match=r"incomplete: the record 'archive/data/0' is missing"
    ):
        load_torch_state_dict(path)
    path = arange_checkpoint(tmp_path / "n.pt", drop=("data.pkl",))
    with pytest.raises(CheckpointError, match="not a torch.save checkpoint: no '<name>/data.pkl'"):
        load_torch_state_dict(path)


def test_storage_of_the_wrong_size_is_refused(tmp_path):
    body = op_dict({"w": op_tensor("0", 6, 0, (2, 3), (3, 1))})
    path = write_checkpoint(tmp_path / "s.pt", body, {"0": bytes(20)})
    with pytest.raises(
        CheckpointError, match="'archive/data/0' holds 20 bytes, but its storage needs 24"
    ):
        load_torch_state_dict(path)
    body = op_dict({"w": op_tensor("0", 6, 1, (2, 3), (3, 1))})
    path = write_checkpoint(tmp_path / "r.pt", body, {"0": bytes(24)})
    with pytest.raises(CheckpointError, match="reads element 6 of storage '0', which holds 6"):
        load_torch_state_dict(path)
    body = op_dict(
        {
            "w": op_tensor("0", 6, 0, (6,), (1,)),
            "v": op_tensor("0", 3, 0, (3,), (1,), "DoubleStorage"),
        }
    )
    path = write_checkpoint(tmp_path / "d.pt", body, {"0": bytes(24)})
    with pytest.raises(CheckpointError, match="storage '0' is described both as"):
        load_torch_state_dict(path)


def test_other_files_are_refused_by_what_they_are(tmp_path):
    legacy = tmp_path / "legacy.pt"  # what torch.save wrote before 1.6: pickles back to back
    legacy.write_bytes(b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03.")
    with pytest.raises(CheckpointError, match="legacy torch.save format"):
        load_torch_state_dict(legacy)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a torch.save file"):
        load_torch_state_dict(text)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_torch_state_dict(tmp_path / "absent.pt")
    order = arange_checkpoint(tmp_path / "o.pt", byteorder=b"middle")
    with pytest.raises(CheckpointError, match="unknown byte order b'middle'"):
        load_torch_state_dict(order)
    with pytest.raises(CheckpointError, match="neither a torch.save zip nor valid safetensors"):
        load_weights(nn.Linear(2, 2), text)


# -- loading into modules: strictness, all or nothing ---------------------------------------------


def test_load_weights_from_a_hand_written_checkpoint(tmp_path):
    w, b = np.arange(6, dtype="<f4"), np.array([7, 8], dtype="<f4")
    body = op_dict(
        {
            "0.weight": op_tensor("0", 6, 0, (2, 3), (3, 1)),
            "0.bias": op_tensor("1", 2, 0, (2,), (1,)),
        }
    )
    path = write_checkpoint(tmp_path / "l.pt", body, {"0": w.tobytes(), "1": b.tobytes()})
    model = nn.Sequential(nn.Linear(3, 2))
    assert str(load_weights(model, path)) == "<All keys matched successfully>"
    np.testing.assert_array_equal(model[0].weight.data, w.reshape(2, 3))
    with cl.no_grad():
        out = model(cl.tensor(np.ones((1, 3), np.float32))).numpy()
    np.testing.assert_array_equal(out, [[0 + 1 + 2 + 7, 3 + 4 + 5 + 8]])


def test_a_mismatch_lists_every_name_and_loads_nothing(tmp_path):
    body = op_dict(
        {
            "0.weight": op_tensor("0", 6, 0, (2, 3), (3, 1)),
            "0.bias": op_tensor("1", 2, 0, (2,), (1,)),
            "1.weight": op_tensor("0", 6, 0, (6,), (1,)),
        }
    )
    path = write_checkpoint(tmp_path / "l.pt", body, {"0": bytes(24), "1": bytes(8)})
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_weights(model, path)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "1.bias".' in message
    assert "Unexpected key(s) in state_dict" not in message
    assert "size mismatch for 0.weight: copying a param with shape (2, 3)" in message
    assert "size mismatch for 0.bias" in message and "size mismatch for 1.weight" in message
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(CheckpointError, match="size mismatch for 0.weight"):
        load_weights(model, path, strict=False)  # shapes are checked even when not strict


def test_safetensors_are_told_apart_by_content(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    # A header length whose first byte is 0x80, as a pickle's first byte is.
    for size in range(200):
        path = tmp_path / "weights.pt"  # the name does not matter, the content does
        save_weights(model, path, {"pad": "x" * size})
        if path.read_bytes()[0] == 0x80:
            break
    again = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert str(load_weights(again, path)) == "<All keys matched successfully>"
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)
        assert again.state_dict()[key].dtype == value.dtype
    with pytest.raises(CheckpointError, match="safetensors file: it has no entries"):
        load_weights(again, path, key="model")
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(
        CheckpointError, match="neither a torch.save zip nor valid safetensors .* is truncated"
    ):
        load_weights(again, path)


# -- against PyTorch ------------------------------------------------------------------------------

INPUTS = {
    "lenet5": (3, 1, 28, 28),
    "tinyvgg": (3, 1, 28, 28),
    "cnn1d": (3, 1, 40),
    "autoencoder": (3, 1, 28, 28),
    "batchnorm": (3, 3, 16, 16),
}


def torch_twin(torch, name):
    """The torch.nn model with convlab's architecture (and so its state_dict names)."""
    t = torch.nn
    if name == "lenet5":
        return t.Sequential(
            t.Conv2d(1, 6, 5, padding=2), t.ReLU(), t.MaxPool2d(2),
            t.Conv2d(6, 16, 5), t.ReLU(), t.MaxPool2d(2), t.Flatten(),
            t.Linear(16 * 5 * 5, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(), t.Linear(84, 10),
        )  # fmt: skip
    if name == "tinyvgg":
        return t.Sequential(
            t.Conv2d(1, 10, 3, padding=1), t.ReLU(), t.Conv2d(10, 10, 3, padding=1), t.ReLU(),
            t.MaxPool2d(2),
            t.Conv2d(10, 10, 3, padding=1), t.ReLU(), t.Conv2d(10, 10, 3, padding=1), t.ReLU(),
            t.MaxPool2d(2), t.Flatten(), t.Linear(10 * 7 * 7, 10),
        )  # fmt: skip
    if name == "cnn1d":
        return t.Sequential(
            t.Conv1d(1, 32, 5, stride=2, padding=2), t.ReLU(),
            t.Conv1d(32, 32, 5, stride=2, padding=2), t.ReLU(),
            t.Conv1d(32, 32, 5, stride=2, padding=2), t.ReLU(),
            t.Flatten(), t.Linear(32 * 5, 10),
        )  # fmt: skip
    if name == "autoencoder":
        return t.Sequential(
            t.Conv2d(1, 16, 3, stride=2, padding=1), t.ReLU(),
            t.Conv2d(16, 32, 3, stride=2, padding=1), t.ReLU(),
            t.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), t.ReLU(),
            t.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), t.Sigmoid(),
        )  # fmt: skip
    return t.Sequential(
        t.Conv2d(3, 8, 3, padding=1), t.BatchNorm2d(8), t.ReLU(), t.MaxPool2d(2),
        t.Conv2d(8, 8, 3), t.BatchNorm2d(8), t.ReLU(), t.Flatten(), t.Linear(8 * 6 * 6, 5),
    )  # fmt: skip


def our_model(name):
    if name in models.MODELS:
        return models.build_model(name)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 5),
    )  # fmt: skip


def train_torch(torch, model, shape, steps=3):
    """A few SGD steps in training mode: moves every weight and the batch-norm statistics."""
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        loss = (model(torch.randn(shape, generator=generator)) - 0.5).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return optimizer


def assert_same_outputs(torch, theirs, ours, shape, seed=1):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    theirs.eval()
    ours.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    with cl.no_grad():
        got = ours(cl.tensor(x)).numpy()
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(INPUTS))
def test_models_trained_in_torch_run_in_convlab(torch, tmp_path, name):
    torch.manual_seed(0)
    theirs = torch_twin(torch, name)
    train_torch(torch, theirs, INPUTS[name])
    path = tmp_path / f"{name}.pth"
    torch.save(theirs.state_dict(), path)
    ours = our_model(name)
    assert str(load_weights(ours, path)) == "<All keys matched successfully>"
    for key, value in theirs.state_dict().items():  # bit for bit, dtypes included
        got = ours.state_dict()[key]
        assert got.dtype == value.numpy().dtype, key
        np.testing.assert_array_equal(got, value.numpy(), err_msg=key)
    assert_same_outputs(torch, theirs, ours, INPUTS[name])
    if name == "batchnorm":
        tracked = ours.get_buffer("1.num_batches_tracked").data
        assert tracked.dtype == np.int64 and tracked == 3


def test_loading_needs_no_torch(torch, tmp_path):
    torch.manual_seed(0)
    theirs = torch_twin(torch, "lenet5")
    torch.save(theirs.state_dict(), tmp_path / "lenet.pt")
    code = (
        "import sys; sys.modules['torch'] = None  # any import of torch now fails\n"
        "import numpy as np\n"
        "from convlab.io import load_weights\n"
        "from convlab.models import lenet5\n"
        "model = lenet5()\n"
        f"load_weights(model, {str(tmp_path / 'lenet.pt')!r})\n"
        f"np.save({str(tmp_path / 'w.npy')!r}, model.state_dict()['7.weight'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), theirs[7].weight.detach().numpy())


def test_a_training_checkpoint_dict(torch, tmp_path):
    torch.manual_seed(0)
    theirs = torch_twin(torch, "batchnorm")
    optimizer = train_torch(torch, theirs, INPUTS["batchnorm"])
    path = tmp_path / "checkpoint.pt"
    torch.save(
        {
            "epoch": 3,
            "model": theirs.state_dict(),
            "optimizer": optimizer.state_dict(),
            "shape": torch.Size([2, 3]),
            "tags": {"bn", "sgd"},
            "blob": b"\x00\xffabc",
            "history": [(1, 0.5), (2, 0.25)],
        },
        path,
    )
    ours = our_model("batchnorm")
    load_weights(ours, path)
    assert_same_outputs(torch, theirs, ours, INPUTS["batchnorm"])
    everything = load_torch_checkpoint(path)
    assert everything["epoch"] == 3 and everything["shape"] == (2, 3)
    assert everything["tags"] == {"bn", "sgd"} and everything["blob"] == b"\x00\xffabc"
    assert everything["history"] == [(1, 0.5), (2, 0.25)]
    saved = optimizer.state_dict()
    assert everything["optimizer"]["param_groups"][0]["lr"] == 0.05
    for index, state in saved["state"].items():
        np.testing.assert_array_equal(
            everything["optimizer"]["state"][index]["momentum_buffer"],
            state["momentum_buffer"].numpy(),
        )


TORCH_DTYPES = ["float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8",
                "uint8", "bool"]  # fmt: skip


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
def test_tensors_and_views_saved_by_torch(torch, tmp_path, dtype, protocol):
    generator = torch.Generator().manual_seed(TORCH_DTYPES.index(dtype))
    base = (torch.randn(4, 6, generator=generator) * 50).to(getattr(torch, dtype))
    saved = {
        "base": base,
        "transposed": base.t(),
        "stepped": base[1:, ::2],
        "offset": base[2:, 3:],
        "expanded": base[0:1, :3].expand(5, 3),
        "scalar": base[3, 5],
        "empty": base[4:],
        "permuted": base.reshape(2, 3, 4).permute(2, 0, 1),
    }
    if base.is_floating_point():
        saved["parameter"] = torch.nn.Parameter(base.clone())
    path = tmp_path / "t.pt"
    torch.save(saved, path, pickle_protocol=protocol)
    got = load_torch_state_dict(path)
    assert list(got) == list(saved)
    for name, tensor in saved.items():
        tensor = tensor.detach()
        expected = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()
        assert got[name].dtype == expected.dtype and got[name].shape == expected.shape, name
        np.testing.assert_array_equal(got[name], expected, err_msg=name)


def test_torch_save_of_malicious_objects_is_refused(torch, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.ones(3), "evil": SystemCall(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"global (posix|nt)\.system"):
        load_torch_state_dict(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file is live: an ordinary load runs it
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
def test_whole_modules_legacy_files_and_torchscript_are_refused(torch, tmp_path):
    model = torch_twin(torch, "batchnorm")
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(UnsafeCheckpointError, match=r"torch\.nn\.modules\..*state_dict\(\)"):
        load_torch_state_dict(tmp_path / "whole.pt")
    torch.save(model.state_dict(), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy torch.save format"):
        load_torch_state_dict(tmp_path / "old.pt")
    scripted = torch.jit.trace(torch.nn.Linear(2, 2), torch.ones(1, 2))
    torch.jit.save(scripted, tmp_path / "script.pt")
    with pytest.raises(CheckpointError, match="TorchScript archive"):
        load_torch_state_dict(tmp_path / "script.pt")


def quoted(message, label):
    line = next((s for s in message.splitlines() if label in s), "")
    return set(re.findall(r'"([^"]+)"', line))


def test_strict_loading_lists_what_torch_lists(torch, tmp_path):
    t = torch.nn
    source = t.Sequential(t.Conv2d(1, 4, 3), t.BatchNorm2d(4), t.Linear(4, 2))
    torch.save(source.state_dict(), tmp_path / "source.pt")
    target = t.Sequential(t.Conv2d(1, 5, 3), t.ReLU(), t.Identity(), t.Linear(4, 2))
    with pytest.raises(RuntimeError) as theirs:
        target.load_state_dict(source.state_dict())
    ours = nn.Sequential(nn.Conv2d(1, 5, 3), nn.ReLU(), nn.Identity(), nn.Linear(4, 2))
    before = {k: v.copy() for k, v in ours.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_weights(ours, tmp_path / "source.pt")
    for label in ("Missing key(s)", "Unexpected key(s)"):
        assert quoted(str(info.value), label) == quoted(str(theirs.value), label), label
        assert quoted(str(info.value), label)
    mismatched = re.compile(r"size mismatch for (\S+):")
    assert mismatched.findall(str(info.value)) == mismatched.findall(str(theirs.value))
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    # Not strict: the names that fit are loaded, the rest reported (as torch does).
    source = t.Sequential(t.Conv2d(1, 5, 3), t.BatchNorm2d(5))
    torch.save(source.state_dict(), tmp_path / "partial.pt")
    result = load_weights(ours, tmp_path / "partial.pt", strict=False)
    expected = target.load_state_dict(source.state_dict(), strict=False)
    assert result.missing_keys == expected.missing_keys
    assert result.unexpected_keys == expected.unexpected_keys
    np.testing.assert_array_equal(ours[0].weight.data, source[0].weight.detach().numpy())


@pytest.mark.parametrize("name", list(INPUTS))
def test_convlab_weights_load_into_torch(torch, tmp_path, name):
    st = pytest.importorskip("safetensors.torch", reason="safetensors not installed")
    cl.manual_seed(list(INPUTS).index(name))
    ours = our_model(name)
    if name == "batchnorm":  # move the running statistics off their initial values
        ours.train()
        for seed in range(2):
            x = np.random.default_rng(seed).standard_normal(INPUTS[name]).astype(np.float32)
            ours(cl.tensor(x))
    path = tmp_path / f"{name}.safetensors"
    save_weights(ours, path)
    loaded = st.load_file(str(path))
    theirs = torch_twin(torch, name)
    theirs.load_state_dict(loaded)  # strict: every name, shape and buffer
    assert set(loaded) == set(theirs.state_dict())
    assert_same_outputs(torch, theirs, ours, INPUTS[name])
    if name == "batchnorm":
        assert loaded["1.num_batches_tracked"].dtype == torch.int64
        assert int(loaded["1.num_batches_tracked"]) == 2
        assert theirs[1].num_batches_tracked.item() == 2
    again = our_model(name)
    load_weights(again, path)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value, err_msg=key)
