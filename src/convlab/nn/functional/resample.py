"""Resampling: ``interpolate``, ``pixel_shuffle``/``pixel_unshuffle``, ``unfold``/``fold``.

Each function checks its arguments once, with PyTorch's rules and messages, then calls one
autograd ``Function`` whose forward and backward are kernels from
``convlab.kernels.resample``. Inputs may be ``Tensor`` or NumPy arrays; results are ``Tensor``.

``unfold`` and ``fold`` go beyond PyTorch: they work for any number of spatial dimensions (the
number is the length of the tuple arguments; all-int arguments mean 2-D, as in PyTorch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from convlab.autograd import Function, Tensor
from convlab.kernels import resample as K
from convlab.nn.functional._args import as_array as _array

__all__ = [
    "interpolate",
    "upsample",
    "upsample_nearest",
    "upsample_bilinear",
    "pixel_shuffle",
    "pixel_unshuffle",
    "unfold",
    "fold",
]

# PyTorch's names for dtypes, as its "not implemented for 'Long'" messages print them.
_TORCH_NAMES = {
    "bool": "Bool",
    "uint8": "Byte",
    "int8": "Char",
    "int16": "Short",
    "int32": "Int",
    "int64": "Long",
    "float16": "Half",
    "float32": "Float",
    "float64": "Double",
    "complex64": "ComplexFloat",
    "complex128": "ComplexDouble",
}
_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _not_implemented(kernel: str, dtype: np.dtype) -> NotImplementedError:
    name = _TORCH_NAMES.get(np.dtype(dtype).name, str(dtype))
    return NotImplementedError(f"\"{kernel}\" not implemented for '{name}'")


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating))


# ---------------------------------------------------------------------------------------------
# interpolate
# ---------------------------------------------------------------------------------------------

_INTERP_MODES = "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact"
# mode -> (spatial dims it needs or None for any, kernel mode)
_MODE_TABLE = {
    "nearest": (None, "nearest"),
    "nearest-exact": (None, "nearest-exact"),
    "area": (None, "area"),
    "linear": (1, "linear"),
    "bilinear": (2, "linear"),
    "trilinear": (3, "linear"),
    "bicubic": (2, "cubic"),
    "lanczos": (2, "lanczos"),
}
_LINEAR_NAMES = {1: "linear", 2: "bilinear", 3: "trilinear"}
_AXES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}


class InterpolateFunction(Function):
    """y = W_1 ... W_d x: one sparse interpolation matrix per spatial dimension."""

    @staticmethod
    def forward(ctx, x, maps):
        ctx.maps = maps
        return K.interpolate_forward(x, maps)

    @staticmethod
    def backward(ctx, grad_output):
        return (K.interpolate_backward(grad_output, ctx.maps),)


def _size_list(size, dim: int, spatial: list[int]) -> list[int]:
    if isinstance(size, (list, tuple)):
        if len(size) != dim:
            raise ValueError(
                "Input and output must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {spatial} and output size of {size}. "
                "Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                "output size in (o1, o2, ...,oK) format."
            )
        items = list(size)
    else:
        items = [size] * dim
    if not all(_is_int(v) for v in items):
        raise TypeError(
            "expected size to be one of int or Tuple[int] or Tuple[int, int] or "
            f"Tuple[int, int, int], but got size with types {[type(v) for v in items]}"
        )
    return [int(v) for v in items]


def _scale_list(scale_factor, dim: int, spatial: list[int]) -> list[float]:
    if isinstance(scale_factor, (list, tuple)):
        if len(scale_factor) != dim:
            raise ValueError(
                "Input and scale_factor must have the same number of spatial dimensions, but "
                f"got input with spatial dimensions of {spatial} and "
                f"scale_factor of shape {scale_factor}. "
                "Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                "scale_factor in (s1, s2, ...,sK) format."
            )
        items = list(scale_factor)
    else:
        items = [scale_factor] * dim
    if not all(_is_number(v) for v in items):
        raise TypeError(
            "expected scale_factor to be a float or a tuple of floats, but got scale_factor="
            f"{scale_factor!r}"
        )
    return [float(v) for v in items]


def _sizes_text(names, values) -> str:
    return ", ".join(f"{a}: {v}" for a, v in zip(names, values))


def _check_upsample_sizes(x: np.ndarray, out: list[int]) -> None:
    """``upsample_Nd_common_check``: positive sizes, then non-empty channel dimension."""
    dim = x.ndim - 2
    spatial = x.shape[2:]
    if any(s <= 0 for s in spatial) or any(o <= 0 for o in out):
        names = _AXES[dim]
        joiner = " and output" if dim == 1 else " output"
        raise RuntimeError(
            "Input and output sizes should be greater than 0, but got input "
            f"({_sizes_text(names, spatial)}){joiner} ({_sizes_text(names, out)})"
        )
    if x.shape[1] == 0:
        raise RuntimeError(
            f"Non-empty {x.ndim}D data tensor expected but got a tensor with sizes {list(x.shape)}"
        )


def _check_area_sizes(x: np.ndarray, out: list[int]) -> None:
    """``adaptive_avg_pool{2,3}d``'s checks (1-D input goes through the 2-D op, unsqueezed)."""
    dim = x.ndim - 2
    op = f"adaptive_avg_pool{max(dim, 2)}d"
    shape = list(x.shape) if dim > 1 else [*x.shape[:2], 1, x.shape[2]]
    sizes = out if dim > 1 else [1, *out]
    if any(o < 0 for o in sizes):
        # PyTorch's own formatting, including the missing space in the 3-D case.
        text = ", ".join(str(v) for v in sizes[:2]) + "".join(f",{v}" for v in sizes[2:])
        raise RuntimeError(
            f"{op}: elements of output_size must be greater than or equal to 0 but received "
            f"{{{text}}}"
        )
    for axis in range(2, len(shape)):
        if shape[axis] == 0:
            raise RuntimeError(
                f"{op}(): Expected input to have non-zero size for non-batch dimensions, but "
                f"input has sizes {shape} with dimension {axis} being empty"
            )


def _output_size_from_scale(spatial, scales, recompute: bool) -> list[int]:
    out = []
    for s, f in zip(spatial, scales):
        value = s * f
        if not math.isfinite(value):
            if recompute:  # Python's int() in torch.nn.functional
                kind = "NaN" if math.isnan(value) else "infinity"
                error = ValueError if kind == "NaN" else OverflowError
                raise error(f"cannot convert float {kind} to integer")
            raise RuntimeError("value cannot be converted to type int64_t without overflow")
        out.append(int(value))
    return out


def interpolate(
    input,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resample ``(N, C, *spatial)`` to a new spatial size (1-, 2- or 3-D), as torch does.

    Args:
        input: ``(N, C, W)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
        size: the output spatial size (int or one int per dimension).
        scale_factor: multiplier of the spatial size (float or one per dimension); give exactly
            one of ``size`` and ``scale_factor``.
        mode: ``'nearest'`` (``src = floor(dst * scale)``, OpenCV's rule), ``'nearest-exact'``
            (``floor((dst + 0.5) * scale)``), ``'linear'`` (3-D input), ``'bilinear'`` (4-D),
            ``'bicubic'`` (4-D, Keys' kernel with A = -0.75, edge pixels repeated),
            ``'trilinear'`` (5-D), ``'area'`` (adaptive average pooling), ``'lanczos'``
            (4-D, antialias only).
        align_corners: linear and cubic modes only (default False). True maps the centres of
            the corner pixels onto each other (``src = dst * (in - 1) / (out - 1)``); False uses
            half-pixel centres (``src = (dst + 0.5) * scale - 0.5``).
        recompute_scale_factor: with ``scale_factor``, map coordinates with ``in / out`` rather
            than ``1 / scale_factor``.
        antialias: widen the bilinear/bicubic filter when downsampling (4-D input only).

    Shape: ``out_d = size_d`` or ``floor(in_d * scale_factor_d)``.

    >>> interpolate(randn(1, 1, 2, 2), scale_factor=2, mode="bilinear").shape   # (1, 1, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.interpolate.html
    """
    x = _array(input, "input", "interpolate")
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                "align_corners option can only be set with the "
                "interpolating modes: linear | bilinear | bicubic | trilinear"
            )
    elif align_corners is None:
        align_corners = False
    dim = x.ndim - 2
    spatial = list(x.shape[2:])

    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        output_size: list[int] | None = _size_list(size, dim, spatial)
        scales: list[float] | None = None
    elif scale_factor is not None:
        output_size = None
        scales = _scale_list(scale_factor, dim, spatial)
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if mode == "area" and output_size is None:
        recompute_scale_factor = True  # area always works from an explicit size
    if recompute_scale_factor:
        output_size = _output_size_from_scale(spatial, scales, recompute=True)
        scales = None
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and x.ndim == 4):
        raise ValueError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
            "requires a 4-D tensor as input"
        )

    needed, kernel_mode = (
        _MODE_TABLE.get(mode, (None, None)) if isinstance(mode, str) else (0, None)
    )
    if kernel_mode is None or x.ndim not in (3, 4, 5) or (needed is not None and needed != dim):
        if mode in _LINEAR_NAMES.values() and dim in _LINEAR_NAMES:
            wanted = {"linear": 3, "bilinear": 4, "trilinear": 5}[mode]
            raise NotImplementedError(f"Got {x.ndim}D input, but {mode} mode needs {wanted}D input")
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {x.ndim}D) for the "
            f"modes: {_INTERP_MODES} (got {mode})"
        )
    if mode == "lanczos":
        if align_corners:
            raise ValueError("Lanczos mode does not support align_corners=True")
        if not antialias:
            raise ValueError("Lanczos mode requires antialias=True")

    if output_size is None:
        output_size = _output_size_from_scale(spatial, scales, recompute=False)
    if mode == "area":
        _check_area_sizes(x, output_size)
    else:
        _check_upsample_sizes(x, output_size)
    _check_interpolate_dtype(x.dtype, mode, dim, antialias)

    maps = [
        K.axis_map(
            kernel_mode,
            spatial[d],
            output_size[d],
            align_corners=bool(align_corners),
            scale=None if scales is None else scales[d],
            antialias=antialias,
            dtype=x.dtype,
            legacy_nearest=dim == 2,
        )
        for d in range(dim)
    ]
    return InterpolateFunction.apply(input, maps)


def _check_interpolate_dtype(dtype: np.dtype, mode: str, dim: int, antialias: bool) -> None:
    if dtype in _FLOATS:
        return
    if mode in ("nearest", "nearest-exact") and dtype == np.uint8:
        return  # a pure gather, exact in any dtype; PyTorch allows uint8
    if mode == "area":
        kernel = f"adaptive_avg_pool{max(dim, 2)}d"
    elif mode in ("nearest", "nearest-exact"):
        kernel = "compute_indices_weights_nearest"
    else:
        kernel = "compute_indices_weights_linear" if mode != "bicubic" else "upsample_bicubic2d"
        if dtype == np.uint8:
            # PyTorch has a fixed-point uint8 path for (anti-aliased) bilinear/bicubic.
            raise NotImplementedError(
                f"interpolate(): mode {mode!r} on uint8 input is not supported by convlab "
                "(PyTorch's fixed-point uint8 path is not reproduced); convert to float first"
            )
    raise _not_implemented(kernel, dtype)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None) -> Tensor:
    """Deprecated alias of :func:`interpolate` (``torch.nn.functional.upsample``)."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input, size=None, scale_factor=None) -> Tensor:
    """Deprecated alias: ``interpolate(input, size, scale_factor, mode='nearest')``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input, size=None, scale_factor=None) -> Tensor:
    """Deprecated alias: ``interpolate(..., mode='bilinear', align_corners=True)``."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------------------------------------
# Pixel shuffle
# ---------------------------------------------------------------------------------------------


class PixelShuffleFunction(Function):
    """A pure permutation of elements: its adjoint is its inverse."""

    @staticmethod
    def forward(ctx, x, factor, shuffle):
        ctx.factor, ctx.shuffle = factor, shuffle
        fn = K.pixel_shuffle if shuffle else K.pixel_unshuffle
        return fn(x, factor)

    @staticmethod
    def backward(ctx, grad_output):
        fn = K.pixel_unshuffle if ctx.shuffle else K.pixel_shuffle
        return (fn(grad_output, ctx.factor),)


def _check_factor(op: str, name: str, value) -> int:
    if not _is_int(value):
        raise TypeError(
            f"{op}(): argument '{name}' (position 2) must be int, not {type(value).__name__}"
        )
    if value <= 0:
        raise RuntimeError(f"{op} expects a positive {name}, but got {value}")
    return int(value)


def _check_at_least_3d(op: str, x: np.ndarray) -> None:
    if x.ndim < 3:
        raise RuntimeError(
            f"{op} expects input to have at least 3 dimensions, but got input with "
            f"{x.ndim} dimension(s)"
        )


def pixel_shuffle(input, upscale_factor: int) -> Tensor:
    """Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)`` (sub-pixel convolution).

    ``out[..., c, h r + i, w r + j] = in[..., c r^2 + i r + j, h, w]`` with ``r =
    upscale_factor`` (Shi et al., 2016, arXiv 1609.05158).

    >>> pixel_shuffle(randn(1, 8, 3, 3), 2).shape     # (1, 2, 6, 6)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.pixel_shuffle.html
    """
    x = _array(input, "input", "pixel_shuffle")
    r = _check_factor("pixel_shuffle", "upscale_factor", upscale_factor)
    _check_at_least_3d("pixel_shuffle", x)
    c = x.shape[-3]
    if c % (r * r):
        raise RuntimeError(
            "pixel_shuffle expects its input's 'channel' dimension to be divisible by the square "
            f"of upscale_factor, but input.size(-3)={c} is not divisible by {r * r}"
        )
    return PixelShuffleFunction.apply(input, r, True)


def pixel_unshuffle(input, downscale_factor: int) -> Tensor:
    """Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)``: the inverse of pixel_shuffle.

    >>> pixel_unshuffle(randn(1, 2, 6, 6), 2).shape   # (1, 8, 3, 3)

    See https://pytorch.org/docs/stable/generated/torch.nn.functional.pixel_unshuffle.html
    """
    x = _array(input, "input", "pixel_unshuffle")
    r = _check_factor("pixel_unshuffle", "downscale_factor", downscale_factor)
    _check_at_least_3d("pixel_unshuffle", x)
    for axis, name in ((-2, "height"), (-1, "width")):
        if x.shape[axis] % r:
            raise RuntimeError(
                f"pixel_unshuffle expects {name} to be divisible by downscale_factor, but "
                f"input.size({axis})={x.shape[axis]} is not divisible by {r}"
            )
    return PixelShuffleFunction.apply(input, r, False)


# ---------------------------------------------------------------------------------------------
# Unfold / fold
# ---------------------------------------------------------------------------------------------

_FOLD_NAMES = {2: ("height", "width")}


class UnfoldFunction(Function):
    """Sliding blocks as columns; the backward pass is fold (col2im), its adjoint."""

    @staticmethod
    def forward(ctx, x, kernel, dilation, padding, stride, unbatched):
        xb = x[None] if unbatched else x
        ctx.args = (kernel, dilation, padding, stride)
        ctx.input_shape = xb.shape
        ctx.unbatched = unbatched
        ctx.blocks = _blocks(xb.shape[2:], kernel, dilation, padding, stride)
        cols = K.unfold(xb, kernel, dilation, padding, stride)
        return cols[0] if unbatched else cols

    @staticmethod
    def backward(ctx, grad_output):
        g = grad_output[None] if ctx.unbatched else grad_output
        grad = K.fold(g, ctx.input_shape[2:], *ctx.args, ctx.blocks)
        return (grad[0] if ctx.unbatched else grad,)


class FoldFunction(Function):
    """Sum columns back into an image; the backward pass is unfold (im2col), its adjoint."""

    @staticmethod
    def forward(ctx, cols, output_size, kernel, dilation, padding, stride, blocks, unbatched):
        cb = cols[None] if unbatched else cols
        ctx.args = (kernel, dilation, padding, stride)
        ctx.unbatched = unbatched
        y = K.fold(cb, output_size, kernel, dilation, padding, stride, blocks)
        return y[0] if unbatched else y

    @staticmethod
    def backward(ctx, grad_output):
        g = grad_output[None] if ctx.unbatched else grad_output
        grad = K.unfold(g, *ctx.args)
        return (grad[0] if ctx.unbatched else grad,)


def _blocks(spatial, kernel, dilation, padding, stride) -> tuple[int, ...]:
    return tuple(
        (s + 2 * p - d * (k - 1) - 1) // t + 1
        for s, k, d, p, t in zip(spatial, kernel, dilation, padding, stride)
    )


def _spatial_rank(*args) -> int:
    """The number of spatial dims: the length of the first tuple argument, else 2 (torch).

    A length-1 tuple means 1-D (PyTorch rejects it); with 2-tuples everything is PyTorch's.
    """
    for value in args:
        if isinstance(value, Sequence) and not isinstance(value, str):
            return len(value)
    return 2


def _fold_tuple(value, n: int, name: str, op: str) -> tuple[int, ...]:
    if _is_int(value):
        return (int(value),) * n
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
        if not all(_is_int(v) for v in items):
            bad = next(v for v in items if not _is_int(v))
            raise TypeError(
                f"{op}(): argument '{name}' must be tuple of ints, but found element of type "
                f"{type(bad).__name__} at pos {items.index(bad)}"
            )
        if len(items) != n:
            raise RuntimeError(f"It is expected {name} equals to {n}, but got size {len(items)}")
        return tuple(int(v) for v in items)
    raise TypeError(f"{op}(): argument '{name}' must be tuple of ints, not {type(value).__name__}")


def _axis_words(n: int) -> tuple[str, ...]:
    return _FOLD_NAMES.get(n, tuple(f"dim{i}" for i in range(n)))


def _check_fold_args(kernel, dilation, padding, stride) -> None:
    """PyTorch's ``im2col``/``col2im`` shape checks, in its order and wording."""
    words = _axis_words(len(kernel))
    rules = (
        (kernel, lambda v: v > 0, "kernel size should be greater than zero", "kernel"),
        (dilation, lambda v: v > 0, "dilation should be greater than zero", "dilation"),
        (padding, lambda v: v >= 0, "padding should be non-negative", "pad"),
        (stride, lambda v: v > 0, "stride should be greater than zero", "stride"),
    )
    for values, ok, rule, prefix in rules:
        if not all(ok(v) for v in values):
            parts = " ".join(f"{prefix}_{w}: {v}" for w, v in zip(words, values))
            raise RuntimeError(f"{rule}, but got {parts}")


def _check_float_input(x: np.ndarray, kernel: str) -> None:
    if x.dtype not in _FLOATS:
        raise _not_implemented(kernel, x.dtype)


def _tuple_text(values) -> str:
    return "(" + ", ".join(str(v) for v in values) + ")"


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Extract sliding local blocks: ``(N, C, *spatial) -> (N, C * prod(kernel_size), L)``.

    Column ``l`` holds block ``l`` (blocks in row-major order), its rows ordered by channel, then
    kernel offset. Unbatched input ``(C, *spatial)`` gives ``(C * prod(kernel_size), L)``.

    Unlike PyTorch (4-D input only), any number ``n`` of spatial dimensions works: ``n`` is the
    length of ``kernel_size`` (or of the first other tuple argument); when every argument is an
    int, ``n = 2`` as in PyTorch. So ``unfold(x, (3,))`` unfolds a 1-D signal ``(N, C, L)`` and
    ``unfold(x, (2, 2, 2))`` a volume ``(N, C, D, H, W)``.

    Shape: ``L = prod_d floor((S_d + 2 padding_d - dilation_d (k_d - 1) - 1) / stride_d + 1)``.

    >>> unfold(randn(1, 3, 4, 4), 2).shape          # (1, 12, 9)

    See https://pytorch.org/docs/stable/generated/torch.nn.Unfold.html
    """
    x = _array(input, "input", "unfold")
    n = _spatial_rank(kernel_size, dilation, padding, stride)
    kernel = _fold_tuple(kernel_size, n, "kernel_size", "im2col")
    dilation = _fold_tuple(dilation, n, "dilation", "im2col")
    padding = _fold_tuple(padding, n, "padding", "im2col")
    stride = _fold_tuple(stride, n, "stride", "im2col")
    _check_fold_args(kernel, dilation, padding, stride)
    if x.ndim not in (n + 1, n + 2) or any(s == 0 for s in x.shape[-n - 1 :]):
        raise RuntimeError(
            f"Expected {n + 1}D or {n + 2}D (batch mode) tensor with possibly 0 batch size and "
            f"other non-zero dimensions for input, but got: {list(x.shape)}"
        )
    blocks = _blocks(x.shape[-n:], kernel, dilation, padding, stride)
    if any(b < 1 for b in blocks):
        raise RuntimeError(
            f"Given input with spatial size {_tuple_text(x.shape[-n:])}, kernel_size="
            f"{_tuple_text(kernel)}, dilation={_tuple_text(dilation)}, padding="
            f"{_tuple_text(padding)}, calculated shape of the array of sliding blocks as "
            f"{_tuple_text(blocks)}, but its components must be at least one."
        )
    _check_float_input(x, "im2col_out_cpu")
    return UnfoldFunction.apply(input, kernel, dilation, padding, stride, x.ndim == n + 1)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sum sliding blocks back into an image: ``(N, C * prod(k), L) -> (N, C, *output_size)``.

    The adjoint of :func:`unfold` (overlapping blocks add up); ``fold(unfold(x))`` is ``x``
    times the number of blocks covering each position. Unbatched ``(C * prod(k), L)`` input
    gives ``(C, *output_size)``. Any number of spatial dimensions works, as for :func:`unfold`:
    ``n`` is the length of the first tuple among ``kernel_size``, ``dilation``, ``padding``,
    ``stride`` and ``output_size``; 2 when all are ints.

    Shape: ``L`` must equal the number of blocks of ``output_size`` (the formula of
    :func:`unfold`).

    >>> fold(randn(1, 12, 9), (4, 4), 2).shape     # (1, 3, 4, 4)

    See https://pytorch.org/docs/stable/generated/torch.nn.Fold.html
    """
    x = _array(input, "input", "fold")
    n = _spatial_rank(kernel_size, dilation, padding, stride, output_size)
    out = _fold_tuple(output_size, n, "output_size", "col2im")
    kernel = _fold_tuple(kernel_size, n, "kernel_size", "col2im")
    dilation = _fold_tuple(dilation, n, "dilation", "col2im")
    padding = _fold_tuple(padding, n, "padding", "col2im")
    stride = _fold_tuple(stride, n, "stride", "col2im")
    _check_fold_args(kernel, dilation, padding, stride)
    if x.ndim not in (2, 3) or any(s == 0 for s in x.shape[-2:]):
        raise RuntimeError(
            "Expected 2D or 3D (batch mode) tensor for input with possibly 0 batch size and "
            f"non-zero dimensions for input, but got: {list(x.shape)}"
        )
    rows, length = x.shape[-2:]
    k = math.prod(kernel)
    if rows % k:
        raise RuntimeError(
            "Expected size of input's dimension 1 to be divisible by the product of "
            f"kernel_size, but got input.size(1)={rows} and kernel_size={_tuple_text(kernel)}."
        )
    blocks = _blocks(out, kernel, dilation, padding, stride)
    if math.prod(blocks) != length or any(b < 1 for b in blocks):
        raise RuntimeError(
            f"Given output_size={_tuple_text(out)}, kernel_size={_tuple_text(kernel)}, "
            f"dilation={_tuple_text(dilation)}, padding={_tuple_text(padding)}, stride="
            f"{_tuple_text(stride)}, expected size of input's dimension 2 to match the "
            f"calculated number of sliding blocks {' * '.join(str(b) for b in blocks)} = "
            f"{math.prod(blocks)}, but got input.size(2)={length}."
        )
    _check_float_input(x, "col2im_out_cpu")
    return FoldFunction.apply(input, out, kernel, dilation, padding, stride, blocks, x.ndim == 2)
