"""Data sets as plain arrays: the digits shipped with convlab and the formats users bring.

Every loader returns a :class:`Split` of training and test :class:`ArrayDataset` objects whose
``inputs`` are uint8 or float arrays shaped ``(N, C, *spatial)`` and whose ``targets`` are int64
class indices. Nothing is ever unpickled: ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "ArrayDataset",
    "DataError",
    "Split",
    "load_dataset",
    "load_idx",
    "load_image_folder",
    "load_mnist1d",
    "load_mnist5k",
    "load_npz",
    "read_idx",
]


class DataError(ValueError):
    """A data set that cannot be read: missing, truncated, corrupt or inconsistent."""


@dataclass
class ArrayDataset:
    """Inputs ``(N, C, *spatial)`` and int64 targets ``(N,)``, indexable like a list."""

    inputs: np.ndarray
    targets: np.ndarray
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.targets):
            raise DataError(
                f"inputs and targets differ in length: {len(self.inputs)} inputs, "
                f"{len(self.targets)} targets"
            )
        self.targets = np.asarray(self.targets, dtype=np.int64)
        if not self.classes:
            count = int(self.targets.max()) + 1 if len(self.targets) else 0
            self.classes = [str(i) for i in range(count)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs.shape[1:])


@dataclass
class Split:
    """A named data set cut into training and test parts."""

    name: str
    train: ArrayDataset
    test: ArrayDataset


def load_mnist5k() -> Split:
    """The 5,000 MNIST digits shipped with convlab: 4,000 to train on, 1,000 to test.

    Stratified and fixed (400 + 100 per class); source and licence in ``data/MNIST5K.md``.
    """
    with resources.files("convlab.data").joinpath("mnist5k.npz").open("rb") as f:
        arrays = np.load(f, allow_pickle=False)
        train = ArrayDataset(arrays["train_images"][:, None], arrays["train_labels"])
        test = ArrayDataset(arrays["test_images"][:, None], arrays["test_labels"])
    return Split("mnist-5k", train, test)


def load_mnist1d() -> Split:
    """MNIST-1D (Greydanus, 2020): 4,000 + 1,000 sequences of 40 points, shipped pre-generated.

    Inputs are ``(N, 1, 40)`` float32; source and licence in ``data/MNIST1D.md``.
    """
    with resources.files("convlab.data").joinpath("mnist1d.npz").open("rb") as f:
        arrays = np.load(f, allow_pickle=False)
        train = ArrayDataset(arrays["train_inputs"][:, None], arrays["train_labels"])
        test = ArrayDataset(arrays["test_inputs"][:, None], arrays["test_labels"])
    return Split("mnist1d", train, test)


# --- IDX (the original MNIST / Fashion-MNIST files) ---------------------------------------------

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or not), checking its header against its length."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except OSError as error:
        raise DataError(f"cannot read IDX file {path}: {error}") from None
    except (EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"IDX file {path} is a corrupt gzip file: {error}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {path} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"IDX file {path} is truncated or corrupt: its header promises shape {shape} "
            f"({expected} bytes of data) but it holds {len(raw) - header} bytes"
        )
    return (
        np.frombuffer(raw, dtype=dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def _find(directory: Path, stem: str) -> Path:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory} has no {stem} or {stem}.gz (the MNIST IDX file names)")


def load_idx(directory: str | os.PathLike) -> Split:
    """MNIST or Fashion-MNIST from a directory holding the four ``*-ubyte`` IDX files."""
    directory = Path(directory)
    parts = {}
    for part, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1:
            raise DataError(
                f"{directory}: expected images (N, H, W) and labels (N,), got {images.shape} "
                f"and {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{directory}: {prefix} has {len(images)} images but {len(labels)} labels"
            )
        parts[part] = ArrayDataset(images[:, None], labels)
    return Split(directory.name, parts["train"], parts["test"])


# --- .npz and image folders -----------------------------------------------------------------------


def _stratified_split(inputs, targets, test_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(targets), bool)
    for label in np.unique(targets):
        members = np.flatnonzero(targets == label)
        rng.shuffle(members)
        test_mask[members[: int(round(len(members) * test_fraction))]] = True
    return (inputs[~test_mask], targets[~test_mask]), (inputs[test_mask], targets[test_mask])


def _as_nchw(x: np.ndarray, source: str) -> np.ndarray:
    if x.ndim == 2:  # (N, L) sequences
        return x[:, None]
    if x.ndim == 3:  # (N, H, W) greyscale
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # NHWC -> NCHW
    if x.ndim in (4, 5):
        return x
    raise DataError(f"{source}: x must have 2 to 5 dimensions (N, ...), got shape {x.shape}")


def load_npz(path: str | os.PathLike, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """An ``.npz`` holding ``x`` and ``y`` (and optionally ``x_test`` and ``y_test``).

    Without a test part, a stratified ``test_fraction`` is held out with ``seed``.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            data = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"cannot read {path} as .npz: {error}") from None
    for key in ("x", "y"):
        if key not in data:
            raise DataError(f"{path} must contain arrays 'x' and 'y'; it has {sorted(data)}")
    x, y = _as_nchw(data["x"], str(path)), data["y"]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise DataError(f"{path}: y must be non-negative integer class labels of shape (N,)")
    if "x_test" in data and "y_test" in data:
        train, test = (x, y), (_as_nchw(data["x_test"], str(path)), data["y_test"])
    else:
        train, test = _stratified_split(x, y, test_fraction, seed)
    classes = [str(i) for i in range(int(max(train[1].max(), test[1].max())) + 1)]
    return Split(path.stem, ArrayDataset(*train, classes), ArrayDataset(*test, classes))


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


def load_image_folder(
    directory: str | os.PathLike,
    size: tuple[int, int] | None = None,
    grayscale: bool | None = None,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Images in one sub-folder per class (``root/cat/1.png``), read with Pillow.

    Images are resized to ``size`` (height, width); without it all must share one size.
    ``grayscale=None`` keeps colour only if some image has it. A sub-folder split into ``train``
    and ``test`` directories is honoured; otherwise a stratified ``test_fraction`` is held out.
    """
    try:
        from PIL import Image
    except ImportError:
        raise DataError(
            "reading image folders needs Pillow: pip install 'convlab[images]'"
        ) from None
    root = Path(directory)
    if (root / "train").is_dir() and (root / "test").is_dir():
        train = load_image_folder(root / "train", size, grayscale, 0.0, seed).train
        test = load_image_folder(root / "test", size, grayscale, 0.0, seed).train
        if test.classes != train.classes:
            raise DataError(f"{root}: train and test have different class folders")
        return Split(root.name, train, test)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{root} has no class sub-folders (expected root/<class>/<image>)")
    files, labels = [], []
    for label, name in enumerate(classes):
        for file in sorted((root / name).iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                files.append(file)
                labels.append(label)
    if not files:
        raise DataError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) were found")
    images = []
    for file in files:
        try:
            with Image.open(file) as image:
                image.load()
                images.append(image.copy())
        except OSError as error:
            raise DataError(f"cannot read image {file}: {error}") from None
    if grayscale is None:
        grayscale = all(image.mode in ("L", "1", "I;16", "I") for image in images)
    arrays = []
    for file, image in zip(files, images):
        image = image.convert("L" if grayscale else "RGB")
        if size is not None:
            image = image.resize((size[1], size[0]), Image.BILINEAR)
        array = np.asarray(image, dtype=np.uint8)
        if arrays and array.shape != arrays[0].shape:
            raise DataError(
                f"images have mixed sizes ({files[0].name} is {arrays[0].shape[:2]}, "
                f"{file.name} is {array.shape[:2]}): pass a size to resize them"
            )
        arrays.append(array)
    x = np.stack(arrays)
    x = x[:, None] if grayscale else x.transpose(0, 3, 1, 2)
    y = np.asarray(labels)
    if test_fraction <= 0:
        dataset = ArrayDataset(np.ascontiguousarray(x), y, classes)
        return Split(root.name, dataset, ArrayDataset(x[:0], y[:0], classes))
    train, test = _stratified_split(x, y, test_fraction, seed)
    return Split(root.name, ArrayDataset(*train, classes), ArrayDataset(*test, classes))


def load_dataset(spec: str, seed: int = 0) -> Split:
    """Resolve ``--data``: a shipped name, an IDX directory, an image folder or an ``.npz``."""
    if spec in ("mnist-5k", "mnist5k"):
        return load_mnist5k()
    if spec in ("mnist1d", "mnist-1d"):
        return load_mnist1d()
    path = Path(spec)
    if not path.exists():
        raise DataError(
            f"data {spec!r} not found: give 'mnist-5k', 'mnist1d', a directory of MNIST IDX "
            "files or of class sub-folders of images, or an .npz with x and y"
        )
    if path.is_file():
        if path.suffix != ".npz":
            raise DataError(f"{path}: a data file must be an .npz with arrays x and y")
        return load_npz(path, seed=seed)
    names = {p.name for p in path.iterdir()}
    if any("idx" in name and "ubyte" in name for name in names):
        return load_idx(path)
    return load_image_folder(path, seed=seed)
