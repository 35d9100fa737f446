"""Weight initialisers with torch.nn.init's names, fan computations, gains and error messages.

Each fills a Tensor in place from convlab's seeded generator (``convlab.manual_seed``), or from
the ``generator`` given, and returns it. Fans follow PyTorch: for a weight ``(out, in, *kernel)``,
``fan_in = in * prod(kernel)`` and ``fan_out = out * prod(kernel)``.
See https://pytorch.org/docs/stable/nn.init.html
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from convlab.autograd import Tensor, default_generator

__all__ = [
    "calculate_gain",
    "constant_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's table).

    ``linear``/``convNd``/``sigmoid``: 1; ``tanh``: 5/3; ``relu``: sqrt(2);
    ``leaky_relu``: sqrt(2 / (1 + negative_slope**2)) with ``param`` the slope (default 0.01);
    ``selu``: 3/4.

    >>> calculate_gain("leaky_relu", 0.2)    # 1.3867504905630728
    """
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4  # found empirically (PyTorch PR 50664)
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)``: ``in * k`` and ``out * k``."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions, "
            f"but got a tensor of shape {tuple(shape)}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    valid = ["fan_in", "fan_out"]
    mode = mode.lower() if isinstance(mode, str) else mode
    if mode not in valid:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _generator(generator: np.random.Generator | None) -> np.random.Generator:
    return default_generator() if generator is None else generator


def _check_floating(tensor: Tensor, op: str) -> None:
    if tensor.dtype.kind != "f":
        raise NotImplementedError(
            f'"{op}" not implemented for tensor of dtype {tensor.dtype}: random initialisers '
            "fill floating-point tensors only"
        )


def _fill(tensor: Tensor, values: np.ndarray) -> Tensor:
    tensor.data[...] = values.astype(tensor.dtype, copy=False)
    return tensor


def uniform_(
    tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """Fill with values drawn from U(a, b).

    >>> uniform_(cl.empty(3, 5), -0.1, 0.1)
    """
    _check_floating(tensor, "uniform_")
    if a > b:
        raise RuntimeError(
            f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}"
        )
    return _fill(tensor, _generator(generator).uniform(a, b, tensor.shape))


def normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with values drawn from N(mean, std**2)."""
    _check_floating(tensor, "normal_")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _fill(tensor, _generator(generator).normal(mean, std, tensor.shape))


def _standard_normal_mass(lo: float, hi: float) -> float:
    """P(lo <= Z <= hi) for a standard normal Z."""
    return 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2)))


def _truncated_standard_normal(
    rng: np.random.Generator, size: int, lo: float, hi: float
) -> np.ndarray:
    """``size`` draws of Z ~ N(0, 1) conditioned on ``lo <= Z <= hi``, by rejection.

    Plain normal proposals when the interval holds enough mass; otherwise (a narrow interval or
    one far in a tail) Robert's proposals (Statistics and Computing, 1995): uniform on the
    interval, or an exponential from its inner end, accepted with the matching probability.
    """
    if _standard_normal_mass(lo, hi) >= 0.05:

        def propose(n):
            z = rng.standard_normal(n)
            return z, (z >= lo) & (z <= hi)

    else:
        sign = 1.0
        if hi <= 0:  # mirror a left tail onto the right
            lo, hi, sign = -hi, -lo, -1.0
        inner = max(lo, 0.0)  # the point of the interval nearest the mean
        if inner == 0.0 or (hi - lo) * inner <= 2.0:

            def propose(n):
                z = rng.uniform(lo, hi, n)
                return z, rng.random(n) <= np.exp((inner * inner - z * z) / 2)

        else:
            rate = (lo + math.sqrt(lo * lo + 4)) / 2

            def propose(n):
                z = lo + rng.exponential(1 / rate, n)
                keep = (z <= hi) & (rng.random(n) <= np.exp(-((z - rate) ** 2) / 2))
                return z, keep

        inner_propose = propose

        def propose(n):
            z, keep = inner_propose(n)
            return sign * z, keep

    values = np.empty(size)
    todo = np.arange(size)
    while todo.size:
        z, keep = propose(todo.size)
        values[todo[keep]] = z[keep]
        todo = todo[~keep]
    return values


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: np.random.Generator | None = None,
) -> Tensor:
    """Fill with N(mean, std**2) conditioned on ``a <= x <= b`` (absolute bounds, as torch).

    Exact rejection sampling (PyTorch inverts the CDF instead: the same distribution, other
    values), which stays exact even when ``[a, b]`` lies far in a tail.
    """
    _check_floating(tensor, "trunc_normal_")
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )
    if a > b:
        raise RuntimeError(f"trunc_normal_ expects a <= b, but found a={a} > b={b}")
    if std <= 0:
        raise RuntimeError(f"trunc_normal_ expects std > 0, but found std {std}")
    z = _truncated_standard_normal(
        _generator(generator), tensor.data.size, (a - mean) / std, (b - mean) / std
    )
    values = np.clip(mean + std * z, a, b)  # clip only the last-bit rounding of mean + std * z
    return _fill(tensor, values.reshape(tensor.shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    tensor.data[...] = val
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, zeros elsewhere)."""
    if tensor.ndim != 2:
        raise ValueError(
            f"Only tensors with 2 dimensions are supported, but got a tensor of shape "
            f"{tuple(tensor.shape)}"
        )
    tensor.data[...] = np.eye(*tensor.shape, dtype=tensor.dtype)
    return tensor


def xavier_uniform_(
    tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # the uniform bounds with that standard deviation
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(
    tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None
) -> Tensor:
    """N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))`` (Glorot & Bengio, 2010)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """U(-b, b) with ``b = gain * sqrt(3 / fan)`` (He et al., 2015, arXiv 1502.01852).

    ``a`` is the negative slope given to ``calculate_gain`` for ``leaky_relu``; ``mode`` picks
    ``fan_in`` (keeps the forward variance) or ``fan_out`` (the backward one). ``a=sqrt(5)`` is
    the default of Linear and Conv layers: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """N(0, std**2) with ``std = gain / sqrt(fan)`` (He et al., 2015, arXiv 1502.01852)."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator)
