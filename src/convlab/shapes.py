"""Shape arithmetic for convolution, transposed convolution and pooling.

Pure integer code (standard library only): the one place each formula lives. Kernels, modules,
the shape calculator and the explanations all call it. Conventions are PyTorch's: symmetric
integer padding, ``dilation=1`` means no dilation, and a window's effective extent is
``dilation * (kernel - 1) + 1``. See Dumoulin & Visin, "A guide to convolution arithmetic for
deep learning" (arXiv 1603.07285).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ntuple",
    "effective_kernel",
    "conv_output_size",
    "conv_output_shape",
    "conv_transpose_output_size",
    "conv_transpose_output_shape",
    "conv_transpose_output_range",
    "output_padding_for_size",
    "pool_output_size",
    "pool_output_shape",
    "same_padding",
]


def ntuple(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """Normalise an int-or-sequence argument to a tuple of ``n`` ints.

    >>> ntuple(3, 2, "kernel_size"), ntuple((1, 2), 2, "stride")
    ((3, 3), (1, 2))
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, but got {value!r}")
    if isinstance(value, int) or hasattr(value, "__index__") and not hasattr(value, "__len__"):
        return (int(value),) * n
    if not isinstance(value, Sequence):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, but got {value!r}")
    items = tuple(value)
    if len(items) == 1 and n != 1:
        items = items * n
    if len(items) != n:
        raise ValueError(
            f"{name} must be an int or a tuple of {n} ints, but got {value!r} (length {len(items)})"
        )
    for item in items:
        if isinstance(item, bool) or not (isinstance(item, int) or hasattr(item, "__index__")):
            raise TypeError(f"{name} must contain only ints, but got {value!r}")
    return tuple(int(item) for item in items)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """Extent covered by a dilated kernel: ``dilation * (kernel - 1) + 1``."""
    return dilation * (kernel - 1) + 1


def _pair(padding: int | tuple[int, int]) -> tuple[int, int]:
    return (padding, padding) if isinstance(padding, int) else (padding[0], padding[1])


def conv_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int = 1,
) -> int:
    """Output length of a convolution along one dimension.

    ``out = floor((size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) / stride) + 1``;
    an int ``padding`` pads both sides equally. May be <= 0 when the kernel does not fit.

    >>> conv_output_size(5, 3, stride=2, padding=1), conv_output_size(6, 3, stride=2, padding=1)
    (3, 3)
    """
    lo, hi = _pair(padding)
    return (size + lo + hi - effective_kernel(kernel, dilation)) // stride + 1


def conv_output_shape(
    shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int | tuple[int, int]],
    dilation: Sequence[int],
) -> tuple[int, ...]:
    """:func:`conv_output_size` for every spatial dimension."""
    return tuple(conv_output_size(*args) for args in zip(shape, kernel, stride, padding, dilation))


def conv_transpose_output_size(
    size: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    output_padding: int = 0,
) -> int:
    """Output length of a transposed convolution along one dimension.

    ``out = (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1``.

    >>> conv_transpose_output_size(3, 3, stride=2, padding=1, output_padding=1)
    6
    """
    return (size - 1) * stride - 2 * padding + effective_kernel(kernel, dilation) + output_padding


def conv_transpose_output_shape(
    shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    output_padding: Sequence[int],
) -> tuple[int, ...]:
    """:func:`conv_transpose_output_size` for every spatial dimension."""
    return tuple(
        conv_transpose_output_size(*args)
        for args in zip(shape, kernel, stride, padding, dilation, output_padding)
    )


def conv_transpose_output_range(
    size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> tuple[int, int]:
    """The smallest and largest output length a transposed convolution can be asked for.

    Every length in ``[min, min + stride - 1]`` is a valid ``output_size``: all those inputs of
    the forward convolution give ``size`` outputs.

    >>> conv_transpose_output_range(3, 3, stride=2, padding=1)
    (5, 6)
    """
    smallest = conv_transpose_output_size(size, kernel, stride, padding, dilation, 0)
    return smallest, smallest + stride - 1


def output_padding_for_size(
    wanted: int, size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1
) -> int:
    """The ``output_padding`` that makes a transposed convolution produce ``wanted``.

    Raises ValueError when ``wanted`` is outside :func:`conv_transpose_output_range`.
    """
    smallest, largest = conv_transpose_output_range(size, kernel, stride, padding, dilation)
    if not smallest <= wanted <= largest:
        raise ValueError(
            f"requested an output size of {wanted}, but valid sizes range from {smallest} "
            f"to {largest} (for an input of {size})"
        )
    return wanted - smallest


def pool_output_size(
    size: int,
    kernel: int,
    stride: int,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> int:
    """Output length of a pooling window along one dimension, PyTorch's rule.

    ``out = floor_or_ceil((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``.
    With ``ceil_mode`` a last window that would start in the right padding is dropped
    ("sliding windows that would start in the right padded region are ignored").

    >>> pool_output_size(5, 2, 2, padding=1, ceil_mode=True)
    3
    >>> pool_output_size(6, 1, 2, ceil_mode=True)
    3
    """
    span = size + 2 * padding - effective_kernel(kernel, dilation)
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
    else:
        out = span // stride + 1
    return out


def pool_output_shape(
    shape: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
    ceil_mode: bool = False,
) -> tuple[int, ...]:
    """:func:`pool_output_size` for every spatial dimension."""
    return tuple(
        pool_output_size(s, k, st, p, d, ceil_mode)
        for s, k, st, p, d in zip(shape, kernel, stride, padding, dilation)
    )


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """The (low, high) padding that keeps a stride-1 convolution's length unchanged.

    The total is ``dilation * (kernel - 1)``; when it is odd the extra element goes at the
    end (right/bottom/back), as in PyTorch.

    >>> same_padding(3), same_padding(4), same_padding(2, dilation=3)
    ((1, 1), (1, 2), (1, 2))
    """
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2
