"""Reading ``torch.save`` files (the zip format) with NumPy alone, running no code from them.

A ``.pt``/``.pth`` file written by ``torch.save`` (PyTorch 1.6 and later) is a zip archive:

- ``<name>/data.pkl``: a pickle of the saved object; each tensor is a call to
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and each storage a
  *persistent id* ``("storage", torch.FloatStorage, key, location, numel)``;
- ``<name>/data/<key>``: the raw bytes of each storage;
- ``<name>/byteorder``: ``little`` or ``big`` (absent in old files: little).

An ordinary unpickler imports and calls whatever the pickle names, so loading an untrusted
checkpoint can run arbitrary code. This reader runs the pickle on a restricted machine instead:
only the opcodes that build plain data are allowed, ``GLOBAL`` resolves through an explicit
allow-list to convlab's own stand-ins (torch itself is never imported), ``REDUCE`` may call only
those stand-ins, and ``BUILD`` only sets ``_metadata`` on an ``OrderedDict`` (as
``Module.state_dict()`` pickles it). Anything else raises :class:`UnsafeCheckpointError` naming
what was refused, before it could run. Tensors come back as NumPy arrays (a copy per tensor, in
the stored dtype; bfloat16 becomes float32).

See https://pytorch.org/docs/stable/notes/serialization.html
"""

from __future__ import annotations

import _compat_pickle
import io
import os
import pickle
import pickletools
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convlab.io.checkpoint import CheckpointError

__all__ = ["UnsafeCheckpointError", "load_torch_checkpoint"]

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint whose pickle asks to import or call something outside the allow-list."""


# -- stand-ins for the few torch objects a state_dict pickle names ------------------------------


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and friends: only tags a storage with its dtype."""

    __slots__ = ("name", "raw", "bfloat16")

    def __init__(self, name: str, raw: str, bfloat16: bool = False) -> None:
        self.name = name
        self.raw = np.dtype(raw)  # the dtype of the stored bytes (bfloat16: as uint16)
        self.bfloat16 = bfloat16

    def __repr__(self) -> str:
        return f"torch.{self.name}"


_STORAGE_TYPES = {
    t.name: t
    for t in (
        _StorageType("FloatStorage", "<f4"),
        _StorageType("DoubleStorage", "<f8"),
        _StorageType("HalfStorage", "<f2"),
        _StorageType("BFloat16Storage", "<u2", bfloat16=True),
        _StorageType("LongStorage", "<i8"),
        _StorageType("IntStorage", "<i4"),
        _StorageType("ShortStorage", "<i2"),
        _StorageType("CharStorage", "i1"),
        _StorageType("ByteStorage", "u1"),
        _StorageType("BoolStorage", "u1"),
    )
}


class _Storage:
    """One storage read from ``data/<key>``: a flat array of ``numel`` raw elements."""

    __slots__ = ("key", "type", "data")

    def __init__(self, key: str, storage_type: _StorageType, data: np.ndarray) -> None:
        self.key = key
        self.type = storage_type
        self.data = data

    def finish(self, array: np.ndarray) -> np.ndarray:
        """The raw elements of ``array`` as the values they stand for, in native byte order."""
        array = array.astype(array.dtype.newbyteorder("="), copy=False)
        if self.type.bfloat16:  # bfloat16 is the top half of a float32
            bits = array.astype(np.uint32)
            bits <<= 16  # in place: a 0-d array stays an array
            return bits.view(np.float32)
        if self.type.name == "BoolStorage":
            return array.astype(np.bool_)  # any non-zero byte is True, as in torch
        return array


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise CheckpointError(f"a tensor's {what} must be non-negative integers, got {value!r}")
    return tuple(value)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_tensor``: a copy of the strided view of a storage."""
    if not isinstance(storage, _Storage):
        raise CheckpointError(f"a tensor must be built on a storage, got {type(storage).__name__}")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    (offset,) = _ints((storage_offset,), "storage offset")
    if len(size) != len(stride):
        raise CheckpointError(f"a tensor has size {size} but stride {stride}")
    numel = storage.data.size
    if 0 in size:
        if offset > numel:
            raise CheckpointError(f"a tensor starts at {offset}, past its {numel}-element storage")
        return storage.finish(np.empty(size, storage.data.dtype))
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= numel:
        raise CheckpointError(
            f"a tensor of size {size}, stride {stride} and offset {offset} reads element {last} "
            f"of storage {storage.key!r}, which holds {numel} elements"
        )
    itemsize = storage.data.itemsize
    view = as_strided(
        storage.data[offset:], shape=size, strides=[s * itemsize for s in stride], writeable=False
    )
    return storage.finish(np.array(view, copy=True))


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: Any,
    size: Any,
    stride: Any,
    requires_grad: Any,
    backward_hooks: Any,
    metadata: Any = None,
) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``; hooks and grad flags are dropped."""
    if metadata:  # conjugate / negative bits of complex views change the values: not supported
        raise CheckpointError(f"tensors with metadata {_short(metadata)} are not supported")
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any) -> np.ndarray:
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is its data."""
    if not isinstance(data, np.ndarray):
        raise CheckpointError(f"a Parameter must wrap a tensor, got {type(data).__name__}")
    return data


def _torch_size(dims: Any = ()) -> tuple[int, ...]:
    """Stand-in for ``torch.Size``: a tuple of ints."""
    return _ints(tuple(dims), "torch.Size")


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
    """Stand-in for ``_codecs.encode``, which protocol-2 pickles use for ``bytes``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise CheckpointError(f"_codecs.encode is allowed only on text in latin1, got {encoding!r}")
    return text.encode("latin1")


# (module, name) -> object; the ONLY globals a checkpoint may name.
_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch", "Size"): _torch_size,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _codecs_encode,
    **{("torch", name): t for name, t in _STORAGE_TYPES.items()},
}
_CALLABLE = {id(v): v for v in _GLOBALS.values() if not isinstance(v, _StorageType)}

# Opcodes that only build plain data, run as the standard (pure-Python) unpickler runs them.
# GLOBAL, persistent ids, REDUCE, BUILD and the container updates are re-implemented below;
# every other opcode (INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT1/2/4, out-of-band buffers) is refused.
_DATA_OPCODES = {
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP", "NONE", "NEWTRUE", "NEWFALSE",
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "LIST", "EMPTY_DICT",
    "DICT", "EMPTY_SET", "FROZENSET", "GET", "BINGET", "LONG_BINGET", "PUT", "BINPUT",
    "LONG_BINPUT", "MEMOIZE", "GLOBAL", "STACK_GLOBAL", "PERSID", "BINPERSID",
}  # fmt: skip


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Dispatch(dict):
    def __missing__(self, code: int):
        raise pickle.UnpicklingError(f"unknown pickle opcode {bytes([code])!r}")


class _RestrictedUnpickler(pickle._Unpickler):  # the Python one: its opcode table is a dict
    dispatch = _Dispatch()

    def __init__(self, payload: bytes, archive: _Archive) -> None:
        super().__init__(io.BytesIO(payload), encoding="utf-8")
        self.archive = archive

    def refuse(self, what: str) -> None:
        raise UnsafeCheckpointError(
            f"{self.archive.source}: refused to load: the pickle asks for {what}. Only tensors, "
            "their storages and plain containers (dict, OrderedDict, list, tuple, set, numbers, "
            "strings) are accepted, and nothing in a checkpoint is ever run. If the file holds "
            "a whole model, re-save its weights: torch.save(model.state_dict(), path)"
        )

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names, as protocol-2 pickles write them (pure lookups)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        found = _GLOBALS.get((module, name))
        if found is None:
            self.refuse(f"global {module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            self.refuse(f"persistent id {_short(pid)} (expected a storage)")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            self.refuse(f"a storage of type {_short(storage_type)}")
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise CheckpointError(f"{self.archive.source}: corrupt storage record {_short(pid)}")
        return self.archive.storage(key, storage_type, numel)

    def _reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if id(func) not in _CALLABLE or _CALLABLE[id(func)] is not func:
            self.refuse(f"a call to {_short(func)}")
        if type(args) is not tuple:
            raise CheckpointError(f"{self.archive.source}: corrupt pickle: REDUCE without a tuple")
        try:
            self.stack[-1] = func(*args)
        except TypeError as error:  # wrong arguments: a corrupt or foreign pickle
            name = getattr(func, "__name__", repr(func))
            raise CheckpointError(f"{self.archive.source}: bad call to {name}: {error}") from None

    def _build(self) -> None:
        # Module.state_dict() pickles its OrderedDict with a ``_metadata`` attribute (versions
        # per sub-module): that, and nothing else, may be set.
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) is not OrderedDict or type(state) is not dict or set(state) != {"_metadata"}:
            self.refuse(f"setting the state of a {type(inst).__name__} (BUILD)")
        if not isinstance(state["_metadata"], dict):
            self.refuse("a _metadata attribute that is not a dict")
        inst._metadata = state["_metadata"]

    def _container(self, kind: type) -> Any:
        container = self.stack[-1]
        if not isinstance(container, kind):
            self.refuse(f"updating a {type(container).__name__} as if it were a {kind.__name__}")
        return container

    def _append(self) -> None:
        value = self.stack.pop()
        self._container(list).append(value)

    def _appends(self) -> None:
        items = self.pop_mark()
        self._container(list).extend(items)

    def _setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._container(dict)[key] = value

    def _setitems(self) -> None:
        items = self.pop_mark()
        target = self._container(dict)
        if len(items) % 2:
            raise pickle.UnpicklingError("SETITEMS with an odd number of items")
        for i in range(0, len(items) - 1, 2):
            target[items[i]] = items[i + 1]

    def _additems(self) -> None:
        items = self.pop_mark()
        self._container(set).update(items)


def _refuse_opcode(name: str):
    def refuse(self: _RestrictedUnpickler) -> None:
        self.refuse(f"the opcode {name}, which builds or calls arbitrary objects")

    return refuse


_OVERRIDES = {
    "REDUCE": _RestrictedUnpickler._reduce,
    "BUILD": _RestrictedUnpickler._build,
    "APPEND": _RestrictedUnpickler._append,
    "APPENDS": _RestrictedUnpickler._appends,
    "SETITEM": _RestrictedUnpickler._setitem,
    "SETITEMS": _RestrictedUnpickler._setitems,
    "ADDITEMS": _RestrictedUnpickler._additems,
}
for _op in pickletools.opcodes:
    _code = _op.code.encode("latin1")[0]
    if _op.name in _OVERRIDES:
        _RestrictedUnpickler.dispatch[_code] = _OVERRIDES[_op.name]
    elif _op.name in _DATA_OPCODES:
        _RestrictedUnpickler.dispatch[_code] = pickle._Unpickler.dispatch[_code]
    else:
        _RestrictedUnpickler.dispatch[_code] = _refuse_opcode(_op.name)


# -- the zip archive ------------------------------------------------------------------------------


class _Archive:
    """The records of one ``torch.save`` zip: the pickle, the storages and the byte order."""

    def __init__(self, zf: zipfile.ZipFile, prefix: str, source: str) -> None:
        self.zf = zf
        self.prefix = prefix
        self.source = source
        self.storages: dict[str, _Storage] = {}
        order = self.read(f"{prefix}byteorder", optional=True)
        if order is None or order == b"little":
            self.byteorder = "<"
        elif order == b"big":
            self.byteorder = ">"
        else:
            raise CheckpointError(f"{source}: unknown byte order {order[:20]!r} in 'byteorder'")

    def read(self, name: str, optional: bool = False, size: int | None = None) -> bytes | None:
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            if optional:
                return None
            raise CheckpointError(
                f"{self.source} is incomplete: the record {name!r} is missing"
            ) from None
        if size is not None and info.file_size != size:
            raise CheckpointError(
                f"{self.source} is corrupt: record {name!r} holds {info.file_size} bytes, but its "
                f"storage needs {size}"
            )
        try:
            return self.zf.read(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
            raise CheckpointError(
                f"{self.source} is truncated or corrupt: cannot read {name!r}: {error}"
            ) from None

    def storage(self, key: str, storage_type: _StorageType, numel: int) -> _Storage:
        known = self.storages.get(key)
        if known is not None:
            if known.type is not storage_type or known.data.size != numel:
                raise CheckpointError(
                    f"{self.source} is corrupt: storage {key!r} is described both as "
                    f"{known.type!r} of {known.data.size} and {storage_type!r} of {numel} elements"
                )
            return known
        raw = storage_type.raw.newbyteorder(self.byteorder)
        payload = self.read(f"{self.prefix}data/{key}", size=numel * raw.itemsize)
        storage = _Storage(key, storage_type, np.frombuffer(payload, dtype=raw))
        self.storages[key] = storage
        return storage


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error}") from None
    if not head.startswith(_ZIP_MAGIC):
        if head.startswith(b"\x80") or head[:1] in (b"(", b"c", b"}"):
            raise CheckpointError(
                f"{path} is in the legacy torch.save format (PyTorch before 1.6, or "
                "_use_new_zipfile_serialization=False), which convlab does not read: re-save it "
                "with a current PyTorch, torch.save(torch.load(path), new_path), or as safetensors"
            )
        if not head:
            raise CheckpointError(f"{path} is empty")
        raise CheckpointError(
            f"{path} is not a torch.save file: it does not start like a zip archive "
            f"(first bytes {head[:8]!r})"
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt: {error}") from None


def load_torch_checkpoint(path: str | os.PathLike) -> Any:
    """Read what ``torch.save`` wrote to ``path``, with tensors as NumPy arrays; run nothing.

    Args:
        path: a ``.pt``/``.pth`` file in the zip format (``torch.save``'s default since 1.6).

    Returns:
        The saved object rebuilt from plain containers: dicts (``OrderedDict`` for a
        ``state_dict``), lists, tuples, sets, numbers, strings and ``numpy.ndarray`` for each
        tensor or Parameter (a C-contiguous copy; bfloat16 becomes float32).

    Raises:
        UnsafeCheckpointError: the pickle names a global or an opcode outside the allow-list
            (a whole ``nn.Module``, a ``__reduce__`` calling ``os.system``, ...).
        CheckpointError: a missing, truncated or corrupt file, the legacy format, a missing
            storage record or one of the wrong size.

    >>> state = load_torch_checkpoint("lenet.pt")      # torch.save(model.state_dict(), ...)
    >>> state["0.weight"].shape
    (6, 1, 5, 5)
    """
    path = Path(path)
    with _open_zip(path) as zf:
        names = zf.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if any(n.endswith("/constants.pkl") and n.count("/") == 1 for n in names):
            raise CheckpointError(
                f"{path} is a TorchScript archive (torch.jit.save), not a torch.save "
                "checkpoint: save the model's state_dict with torch.save instead"
            )
        if len(pickles) != 1:
            found = "no" if not pickles else f"{len(pickles)}"
            raise CheckpointError(
                f"{path} is not a torch.save checkpoint: {found} '<name>/data.pkl' records "
                f"among {names[:5]}{'...' if len(names) > 5 else ''}"
            )
        prefix = pickles[0][: -len("data.pkl")]
        archive = _Archive(zf, prefix, str(path))
        payload = archive.read(pickles[0])
        try:
            return _RestrictedUnpickler(payload, archive).load()
        except CheckpointError:
            raise
        except MemoryError:
            raise CheckpointError(f"{path}: a tensor is too large to hold in memory") from None
        except Exception as error:  # any malformed pickle: truncated, bad memo, bad stack ...
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            raise CheckpointError(f"{path} is corrupt: cannot read data.pkl ({detail})") from None
