"""The safetensors file format, read and written with NumPy alone.

Layout (https://github.com/huggingface/safetensors): an 8-byte little-endian header length, a
JSON header mapping each name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (plus an
optional ``"__metadata__"`` of strings), then the raw little-endian bytes. Reading parses JSON
and copies bytes: no code can run, unlike a pickle. Files written here load in ``safetensors``
and therefore in PyTorch.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["SafetensorsError", "atomic_write_bytes", "load_file", "save_file"]

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}  # fmt: skip
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that is not valid safetensors: truncated, corrupt or inconsistent."""


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new, never half.

    The bytes go to a temporary file in the same directory, are flushed to disk, and the file
    is renamed over ``path`` (an atomic replace on POSIX and Windows).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def serialize(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("safetensors metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    chunks, offset = [], 0
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        if array.dtype not in _CODES:
            raise TypeError(
                f"tensor {name!r} has dtype {array.dtype}, which safetensors cannot hold"
            )
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
        header[name] = {
            "dtype": _CODES[array.dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes, as the reference writer does
    return len(text).to_bytes(8, "little") + text + b"".join(chunks)


def save_file(
    tensors: dict[str, np.ndarray], path: str | os.PathLike, metadata: dict[str, str] | None = None
) -> None:
    """Write arrays (by name) and string metadata to ``path``, atomically."""
    atomic_write_bytes(path, serialize(tensors, metadata))


def load_file(path: str | os.PathLike, with_metadata: bool = False):
    """Read every array of a safetensors file; optionally also its metadata dict."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SafetensorsError(f"cannot read {path}: {error}") from None
    if len(raw) < 8:
        raise SafetensorsError(f"{path} is truncated: {len(raw)} bytes, no header")
    size = int.from_bytes(raw[:8], "little")
    if size > _MAX_HEADER or 8 + size > len(raw):
        raise SafetensorsError(
            f"{path} is truncated or corrupt: header length {size} does not fit in {len(raw)} bytes"
        )
    try:
        header = json.loads(raw[8 : 8 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SafetensorsError(f"{path} has a corrupt header: {error}") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"{path} has a corrupt header: not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    body = memoryview(raw)[8 + size :]
    arrays = {}
    for name, info in header.items():
        bfloat16 = isinstance(info, dict) and info.get("dtype") == "BF16"
        try:
            # bfloat16 is the top half of a float32: read it as uint16, widen below.
            dtype = np.dtype(np.uint16 if bfloat16 else _DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(v) for v in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"{path}: entry {name!r} has a corrupt description") from None
        if not 0 <= begin <= end <= len(body) or end - begin != dtype.itemsize * int(
            np.prod(shape)
        ):
            raise SafetensorsError(
                f"{path} is truncated or corrupt: tensor {name!r} {shape} needs bytes "
                f"[{begin}, {end}) of a {len(body)}-byte body"
            )
        array = np.frombuffer(body[begin:end], dtype=dtype).reshape(shape)
        if bfloat16:
            arrays[name] = (array.astype(np.uint32) << 16).view(np.float32)
        else:
            arrays[name] = array.astype(dtype.newbyteorder("="), copy=True)
    return (arrays, metadata) if with_metadata else arrays
