"""ONNX operators as convlab computations: one function per operator, one table to find them.

Every function takes the ``Node`` (its attributes, opset and name) and the node's inputs as
``Tensor`` (``None`` for an absent optional input) and returns a ``Tensor`` or a tuple of them,
one per output. Floating-point work goes through convlab's autograd (``nn.functional``, its
``Function`` classes and ``Tensor`` operators), so an imported model is differentiable; integer
"shape arithmetic" (``Shape``, ``Gather`` on shapes, ``Concat`` of sizes, ...) runs on NumPy.

Semantics are ONNX's (https://onnx.ai/onnx/operators/), opset 11 onward (older opsets where an
operator changed: Clip, Softmax, Squeeze/Unsqueeze, Pad, Slice, Upsample, Resize-10), and where
the specification leaves room or onnxruntime departs from it, onnxruntime's CPU kernels, which
the tests compare against:

- windows (Conv, pooling) take begin/end pads and ``auto_pad`` SAME_UPPER (the odd pad at the
  end) / SAME_LOWER (at the start) / VALID; pooling's ``ceil_mode`` drops a last window that
  would start in the end padding (onnxruntime and PyTorch do; the specification's formula
  would keep it);
- SAME pooling pads are sized with the undilated kernel, as onnxruntime does (the
  specification dilates it; the two agree without dilation);
- pooling pads explicitly first (-inf for max, zeros for average and Lp), then pools without
  padding; the average divides by the window clipped to the padded input
  (``count_include_pad=1``) or to the input (``0``), never counting the part a ceil-mode window
  hangs past the end padding;
- ConvTranspose crops (or zero-extends) the full transposed convolution to its output:
  ``output_shape`` splits the total padding with the odd one at the end for SAME_UPPER and at
  the start otherwise; a larger ``output_shape`` extends the end with zeros (plus bias);
- Resize follows onnxruntime's float32 coordinate arithmetic, so nearest-neighbour rounding
  picks the same pixels.

Supported (``OPERATORS``), with every attribute of the operator unless noted:

==========================  =====================================================================
Conv, ConvTranspose         1-3 (any) spatial dims, strides, dilations, group, pads, auto_pad;
                            ConvTranspose output_padding and output_shape
MaxPool                     kernel, strides, pads, auto_pad, dilations, ceil_mode, the Indices
                            output (storage_order 0 or 1); float inputs only
AveragePool, LpPool         kernel, strides, pads, auto_pad, ceil_mode, count_include_pad,
                            dilations (opset 18/19), LpPool p
GlobalAveragePool/MaxPool   any spatial rank
BatchNormalization          inference only (training_mode=1 and spatial=0 are refused)
LRN, LayerNormalization     all attributes (LayerNormalization: no Mean/InvStdDev outputs)
Activations                 Relu, LeakyRelu, PRelu (broadcast slope), Sigmoid, Tanh, Clip
                            (attributes before opset 11, inputs after), Softmax and LogSoftmax
                            (2-d coercion before opset 13, one axis after), Elu, Celu, Selu,
                            HardSigmoid, HardSwish, Softplus, Gelu, Erf
Arithmetic                  Add, Sub, Mul, Div (integer Div truncates), Sum, Max, Min, Neg, Abs,
                            Exp, Log, Sqrt, Reciprocal, Pow, Sign; MatMul, Gemm (transA, transB,
                            alpha, beta, broadcast C)
Shapes                      Flatten, Reshape (0, -1, allowzero), Transpose, Squeeze, Unsqueeze
                            (axes as attribute or input), Concat, Slice (negative steps), Gather,
                            Expand, Shape (start/end), ConstantOfShape, Constant (value,
                            value_float(s), value_int(s)), Identity, Dropout (inference:
                            identity, optional mask), Cast (numeric types)
Pad                         constant (value), reflect, edge, wrap; negative pads crop; axes
Resize                      nearest (4 nearest_modes), linear, cubic (cubic_coeff_a,
                            exclude_outside); every coordinate_transformation_mode incl.
                            tf_crop_and_resize (roi, extrapolation_value); scales or sizes;
                            axes and keep_aspect_ratio_policy (opset 18). Not: antialias=1
Upsample                    nearest and linear, scales as attribute (7) or input (9)
Reductions                  ReduceMean, ReduceSum, ReduceMax (axes, keepdims,
                            noop_with_empty_axes)
==========================  =====================================================================

Not supported: operators outside the table (control flow If/Loop/Scan, quantized ops, string
ops, non-default domains such as com.microsoft), sparse or string constants, training-mode
BatchNormalization, Resize antialias, pooling of integer tensors. Each ``Operator.check`` runs
at load time and refuses unsupported attribute values, so an unsupported model fails before
anything runs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from convlab.autograd import Function, Tensor, cat, matmul, maximum, minimum
from convlab.nn import functional as F
from convlab.nn.functional.activation import erf as _erf
from convlab.nn.functional.conv import ConvFunction, ConvTransposeFunction, PadFunction
from convlab.nn.functional.pooling import AvgPoolFunction, MaxPoolFunction

__all__ = ["OPERATORS", "Node", "OnnxError", "Operator", "ONNX_DTYPES"]


class OnnxError(ValueError):
    """An ONNX file or graph that convlab cannot read or run; the message says why."""


# ONNX TensorProto element types -> NumPy (the ones a CNN graph carries).
ONNX_DTYPES: dict[int, np.dtype] = {
    1: np.dtype(np.float32),
    2: np.dtype(np.uint8),
    3: np.dtype(np.int8),
    4: np.dtype(np.uint16),
    5: np.dtype(np.int16),
    6: np.dtype(np.int32),
    7: np.dtype(np.int64),
    9: np.dtype(np.bool_),
    10: np.dtype(np.float16),
    11: np.dtype(np.float64),
    12: np.dtype(np.uint32),
    13: np.dtype(np.uint64),
}


@dataclass
class Node:
    """One ONNX node, its attributes already converted to Python values and NumPy arrays."""

    op_type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    opset: int = 17
    domain: str = ""

    @property
    def where(self) -> str:
        return f"{self.op_type} node {self.name!r}"

    def error(self, message: str) -> OnnxError:
        return OnnxError(f"{self.where}: {message}")

    def attr(self, name: str, default: Any = None) -> Any:
        return self.attrs.get(name, default)

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.attrs.get(name, default)
        if value is not None and not isinstance(value, (int, np.integer)):
            raise self.error(f"attribute {name!r} must be an int, but got {value!r}")
        return None if value is None else int(value)

    def float(self, name: str, default: float | None = None) -> float | None:
        value = self.attrs.get(name, default)
        if value is not None and not isinstance(value, (int, float, np.number)):
            raise self.error(f"attribute {name!r} must be a float, but got {value!r}")
        return None if value is None else float(value)

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.attrs.get(name, default)
        if value is not None and not isinstance(value, str):
            raise self.error(f"attribute {name!r} must be a string, but got {value!r}")
        return value

    def ints(self, name: str, default: Sequence[int] | None = None) -> tuple[int, ...] | None:
        value = self.attrs.get(name, default)
        if value is None:
            return None
        if isinstance(value, (int, np.integer)):
            value = (value,)
        if not all(isinstance(v, (int, np.integer)) for v in value):
            raise self.error(f"attribute {name!r} must be a list of ints, but got {value!r}")
        return tuple(int(v) for v in value)

    def floats(self, name: str, default: Sequence[float] | None = None):
        value = self.attrs.get(name, default)
        return None if value is None else tuple(float(v) for v in value)

    def has_input(self, index: int) -> bool:
        return index < len(self.inputs) and self.inputs[index] != ""

    def wants_output(self, index: int) -> bool:
        return index < len(self.outputs) and self.outputs[index] != ""


class Operator(NamedTuple):
    """An entry of :data:`OPERATORS`.

    ``run(node, *inputs)`` computes; ``check(node)`` refuses unsupported attributes at load
    time; ``inputs`` is the (min, max) input count; ``static`` lists inputs read as numbers
    (shapes, axes, scales: never differentiated) and ``state`` inputs that are running
    statistics (kept as buffers, as PyTorch keeps batch norm's).
    """

    run: Callable[..., Any]
    inputs: tuple[int, int]
    check: Callable[[Node], None] | None = None
    static: frozenset[int] = frozenset()
    state: frozenset[int] = frozenset()


# ---------------------------------------------------------------------------------------------
# Helpers: reading inputs as numbers, dtypes, axes
# ---------------------------------------------------------------------------------------------


def _is_float(t: Tensor) -> bool:
    return t.dtype.kind == "f"


def _require_float(node: Node, **tensors: Tensor | None) -> None:
    dtype = None
    for name, t in tensors.items():
        if t is None:
            continue
        if not _is_float(t):
            raise node.error(f"input {name!r} must be a float tensor, but got {t.dtype}")
        if dtype is not None and t.dtype != dtype:
            raise node.error(
                f"inputs must share one float type, but {name!r} is {t.dtype} and an earlier "
                f"input is {dtype}"
            )
        dtype = t.dtype


def _ints_of(node: Node, t: Tensor | None, what: str) -> tuple[int, ...]:
    """An integer tensor's values (shapes, axes, pads), checked."""
    if t is None:
        return ()
    if t.dtype.kind not in "iu":
        raise node.error(f"{what} must be an integer tensor, but got {t.dtype}")
    return tuple(int(v) for v in t.data.reshape(-1))


def _scalar_of(node: Node, t: Tensor | None, what: str) -> float | None:
    if t is None or t.data.size == 0:
        return None
    if t.data.size != 1:
        raise node.error(f"{what} must hold one value, but got shape {list(t.shape)}")
    return t.data.reshape(-1)[0].item()


def _axis(node: Node, axis: int, rank: int, what: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise node.error(f"{what}={axis} is out of range for a tensor of rank {rank}")
    return axis % rank


def _const(array: np.ndarray) -> Tensor:
    array = np.asarray(array)  # 0-d stays 0-d (np.ascontiguousarray would make it 1-d)
    return Tensor(array if array.flags.c_contiguous else array.copy())


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _numpy_or(node: Node, inputs: Sequence[Tensor], float_fn, int_fn) -> Tensor:
    """Float work through autograd; integer shape arithmetic in NumPy."""
    if all(not _is_float(t) for t in inputs):
        return _const(np.asarray(int_fn(*(t.data for t in inputs))))
    return float_fn(*inputs)


# ---------------------------------------------------------------------------------------------
# Window geometry: Conv and pooling
# ---------------------------------------------------------------------------------------------

_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


class Window(NamedTuple):
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    out: tuple[int, ...]


def _check_window_attrs(node: Node, kernel_required: bool = False) -> None:
    auto_pad = node.str("auto_pad", "NOTSET")
    if auto_pad not in _AUTO_PADS:
        raise node.error(f"auto_pad must be one of {', '.join(_AUTO_PADS)}, but got {auto_pad!r}")
    kernel = node.ints("kernel_shape")
    if kernel_required and kernel is None:
        raise node.error("the attribute 'kernel_shape' is required")
    if kernel is not None and any(k <= 0 for k in kernel):
        raise node.error(f"kernel_shape must be positive, but got {list(kernel)}")
    n = None if kernel is None else len(kernel)
    for name, minimum_value in (("strides", 1), ("dilations", 1), ("pads", 0)):
        values = node.ints(name)
        if values is None:
            continue
        if any(v < minimum_value for v in values):
            rule = "positive" if minimum_value else "non-negative"
            raise node.error(f"{name} must be {rule}, but got {list(values)}")
        expected = None if n is None else (2 * n if name == "pads" else n)
        if expected is not None and len(values) != expected:
            raise node.error(
                f"{name} must have {expected} values for a {n}-d kernel, but got {list(values)}"
            )
    if node.int("group", 1) <= 0:
        raise node.error(f"group must be positive, but got {node.int('group')}")


def _spatial_attr(node: Node, name: str, n: int, default: int) -> tuple[int, ...]:
    values = node.ints(name)
    if values is None:
        return (default,) * n
    if len(values) != n:
        raise node.error(f"{name} must have {n} values for {n} spatial dims, got {list(values)}")
    return values


def _window(
    node: Node, spatial: Sequence[int], kernel: Sequence[int], ceil_mode: bool, pool: bool = False
) -> Window:
    """Output size and begin/end pads of a windowed op, ONNX's auto_pad and ceil rules."""
    n = len(spatial)
    kernel = tuple(kernel)
    stride = _spatial_attr(node, "strides", n, 1)
    dilation = _spatial_attr(node, "dilations", n, 1)
    auto_pad = node.str("auto_pad", "NOTSET")
    effective = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        targets = [-(-s // st) for s, st in zip(spatial, stride)]
        if pool:
            # onnxruntime sizes a pool's SAME padding with the undilated kernel, then applies
            # the general formula (the specification uses the dilated kernel; they agree for
            # dilations of 1). The total may be negative: the windows then end early.
            totals = [(t - 1) * st + k - s for t, st, k, s in zip(targets, stride, kernel, spatial)]
        else:
            totals = [
                max(0, (t - 1) * st + e - s)
                for t, st, e, s in zip(targets, stride, effective, spatial)
            ]
        # C's truncating division, as onnxruntime splits: the odd pad goes to the end for
        # SAME_UPPER and to the start for SAME_LOWER.
        half = (lambda t: int(t / 2)) if auto_pad == "SAME_UPPER" else (lambda t: int((t + 1) / 2))
        begins = tuple(half(t) for t in totals)
        ends = tuple(t - b for t, b in zip(totals, begins))
        if not pool:
            out = tuple(targets)
    else:
        if auto_pad == "VALID":
            pads = (0,) * (2 * n)
        else:
            pads = node.ints("pads", (0,) * (2 * n))
            if len(pads) != 2 * n:
                raise node.error(f"pads must have {2 * n} values, but got {list(pads)}")
        begins, ends = tuple(pads[:n]), tuple(pads[n:])
    if pool or auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        out_list = []
        for s, st, e, b, en in zip(spatial, stride, effective, begins, ends):
            span = s + b + en - e
            if ceil_mode:
                o = -(-span // st) + 1
                if o > 1 and (o - 1) * st >= s + b:  # the last window would start in the padding
                    o -= 1
            else:
                o = span // st + 1
            out_list.append(o)
        out = tuple(out_list)
    if any(o <= 0 for o in out):
        raise node.error(
            f"the window (kernel {list(kernel)}, dilations {list(dilation)}, pads "
            f"{list(begins) + list(ends)}) does not fit the input of spatial size "
            f"{list(spatial)}: output size {list(out)}"
        )
    return Window(kernel, stride, dilation, begins, ends, out)


def _pad_to_windows(x: Tensor, w: Window, value: float, crop_end: bool = False) -> Tensor:
    """Pad (or crop) the spatial dims so that unpadded windows cover exactly what ONNX's do.

    A negative end pad (SAME pooling with dilations can give one) ends the input early for
    ``crop_end`` (onnxruntime's AveragePool clips its windows there; its MaxPool and LpPool
    read on to the end of the input).
    """
    if crop_end and any(e < 0 for e in w.ends):
        x = PadFunction.apply(x, tuple((0, min(e, 0)) for e in w.ends), "constant", 0.0)
    pads = []
    for s, k, st, d, b, o in zip(x.shape[2:], w.kernel, w.stride, w.dilation, w.begins, w.out):
        needed = (o - 1) * st + d * (k - 1) + 1
        pads.append((b, needed - s - b))
    if all(p == (0, 0) for p in pads):
        return x
    return PadFunction.apply(x, tuple(pads), "constant", value)


def _window_sum(x: Tensor, w: Window) -> Tensor:
    """Sum over each (unpadded) window: the average-pool kernel, or a ones-kernel convolution
    when the window is dilated."""
    n = len(w.kernel)
    zeros = (0,) * n
    if all(d == 1 for d in w.dilation):
        return AvgPoolFunction.apply(x, w.kernel, w.stride, zeros, False, True, 1)
    lead = x.shape[:2]
    flat = x.reshape(math.prod(lead), 1, *x.shape[2:])
    ones = _const(np.ones((1, 1, *w.kernel), x.dtype))
    y = ConvFunction.apply(flat, ones, None, w.stride, ((0, 0),) * n, w.dilation, 1)
    return y.reshape(*lead, *y.shape[2:])


def _window_counts(spatial: Sequence[int], w: Window, include_pad: bool, dtype) -> np.ndarray:
    """How many input (or input-and-pad) positions each window covers: the average's divisor."""
    n = len(spatial)
    divisor = np.ones((1,) * n, dtype)
    for i, (s, k, st, d, b, e, o) in enumerate(
        zip(spatial, w.kernel, w.stride, w.dilation, w.begins, w.ends, w.out)
    ):
        needed = (o - 1) * st + d * (k - 1) + 1
        position = np.arange(needed) - b
        if include_pad:  # the padded input, not what a ceil-mode window hangs past it
            inside = position < s + e
        else:
            inside = (position >= 0) & (position < s + min(e, 0))
        taps = (np.arange(o) * st)[:, None] + (np.arange(k) * d)[None, :]
        count = inside[taps].sum(axis=1).astype(dtype)
        shape = [1] * n
        shape[i] = o
        divisor = divisor * count.reshape(shape)
    return np.maximum(divisor, 1)


def _pool_input(node: Node, x: Tensor) -> tuple[int, ...]:
    _require_float(node, X=x)
    kernel = node.ints("kernel_shape")
    if x.ndim != len(kernel) + 2:
        raise node.error(
            f"a {len(kernel)}-d kernel needs an input (N, C, {len(kernel)} spatial dims), but "
            f"got shape {_shape_text(x.shape)}"
        )
    return kernel


# ---------------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------------


def _check_conv_shapes(node: Node, x: Tensor, w: Tensor) -> int:
    if x.ndim < 3 or w.ndim != x.ndim:
        raise node.error(
            f"needs input (N, C, *spatial) and weight of the same rank, but got input "
            f"{_shape_text(x.shape)} and weight {_shape_text(w.shape)}"
        )
    kernel = node.ints("kernel_shape")
    if kernel is not None and tuple(kernel) != tuple(w.shape[2:]):
        raise node.error(
            f"kernel_shape {list(kernel)} does not match the weight {_shape_text(w.shape)}"
        )
    return node.int("group", 1)


def conv(node: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """Conv: cross-correlation with strides, dilations, group and begin/end pads or auto_pad."""
    _require_float(node, X=x, W=w, B=b)
    group = _check_conv_shapes(node, x, w)
    if x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise node.error(
            f"group={group} and weight {_shape_text(w.shape)} need {w.shape[1] * group} input "
            f"channels and out channels divisible by {group}, but the input is "
            f"{_shape_text(x.shape)}"
        )
    if b is not None and tuple(b.shape) != (w.shape[0],):
        raise node.error(f"bias must have shape [{w.shape[0]}], but got {_shape_text(b.shape)}")
    win = _window(node, x.shape[2:], w.shape[2:], ceil_mode=False)
    pads = tuple(zip(win.begins, win.ends))
    return ConvFunction.apply(x, w, b, win.stride, pads, win.dilation, group)


def conv_transpose(node: Node, x: Tensor, w: Tensor, b: Tensor | None = None) -> Tensor:
    """ConvTranspose: the full transposed convolution, cropped or extended to ONNX's output."""
    _require_float(node, X=x, W=w, B=b)
    group = _check_conv_shapes(node, x, w)
    n = x.ndim - 2
    if x.shape[1] != w.shape[0] or w.shape[0] % group:
        raise node.error(
            f"weight {_shape_text(w.shape)} needs {w.shape[0]} input channels (divisible by "
            f"group={group}), but the input is {_shape_text(x.shape)}"
        )
    channels = w.shape[1] * group
    if b is not None and tuple(b.shape) != (channels,):
        raise node.error(f"bias must have shape [{channels}], but got {_shape_text(b.shape)}")
    kernel = w.shape[2:]
    stride = _spatial_attr(node, "strides", n, 1)
    dilation = _spatial_attr(node, "dilations", n, 1)
    adj = _spatial_attr(node, "output_padding", n, 0)
    spatial = x.shape[2:]
    full = tuple(
        (s - 1) * st + d * (k - 1) + 1 for s, st, d, k in zip(spatial, stride, dilation, kernel)
    )
    natural = tuple(f + a for f, a in zip(full, adj))
    auto_pad = node.str("auto_pad", "NOTSET")
    output_shape = node.ints("output_shape")
    if output_shape is not None:
        output_shape = output_shape[-n:] if len(output_shape) == n + 2 else output_shape
        if len(output_shape) != n:
            raise node.error(f"output_shape must have {n} values, but got {list(output_shape)}")
        totals = [max(0, nat - o) for nat, o in zip(natural, output_shape)]
        out = tuple(output_shape)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        totals = [max(0, nat - s * st) for nat, s, st in zip(natural, spatial, stride)]
        out = tuple(nat - t for nat, t in zip(natural, totals))
    else:
        pads = (0,) * (2 * n) if auto_pad == "VALID" else node.ints("pads", (0,) * (2 * n))
        begins = pads[:n]
        out = tuple(nat - b - e for nat, b, e in zip(natural, pads[:n], pads[n:]))
        totals = None
    if totals is not None:
        # SAME_UPPER puts the odd pad at the end (begin = total // 2); NOTSET, SAME_LOWER and
        # VALID at the start, as the specification and onnxruntime do.
        if auto_pad == "SAME_UPPER":
            begins = tuple(t // 2 for t in totals)
        else:
            begins = tuple(t - t // 2 for t in totals)
    if any(o <= 0 for o in out):
        raise node.error(f"the output size {list(out)} is not positive (input {list(spatial)})")
    y = ConvTransposeFunction.apply(x, w, None, stride, (0,) * n, (0,) * n, dilation, group)
    crop = tuple((-b, b + o - f) for b, o, f in zip(begins, out, full))
    if any(c != (0, 0) for c in crop):
        y = PadFunction.apply(y, crop, "constant", 0.0)
    if b is not None:
        y = y + b.reshape(1, channels, *(1,) * n)
    return y


# ---------------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------------


def _check_pool(node: Node) -> None:
    _check_window_attrs(node, kernel_required=True)
    if node.int("storage_order", 0) not in (0, 1):
        raise node.error(f"storage_order must be 0 or 1, but got {node.int('storage_order')}")


def max_pool(node: Node, x: Tensor):
    """MaxPool: -inf padding, dilations, ceil_mode; optional Indices (flat, row/column-major)."""
    kernel = _pool_input(node, x)
    win = _window(node, x.shape[2:], kernel, bool(node.int("ceil_mode", 0)), pool=True)
    xp = _pad_to_windows(x, win, -np.inf)
    n = len(kernel)
    want_indices = node.wants_output(1)
    result = MaxPoolFunction.apply(
        xp, win.kernel, win.stride, (0,) * n, win.dilation, False, want_indices
    )
    if not want_indices:
        return result
    y, plane_index = result
    # Plane index in the padded frame -> ONNX's index into the whole (N, C, *spatial) input.
    coords = np.unravel_index(plane_index.data, xp.shape[2:])
    coords = tuple(c - b for c, b in zip(coords, win.begins))
    order = "F" if node.int("storage_order", 0) else "C"
    flat = np.ravel_multi_index(coords, x.shape[2:], mode="clip", order=order)
    planes = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[0], x.shape[1], *(1,) * n)
    return y, _const((flat + planes * math.prod(x.shape[2:])).astype(np.int64))


def average_pool(node: Node, x: Tensor) -> Tensor:
    """AveragePool: zero padding, count_include_pad, ceil_mode, dilations (opset 19)."""
    kernel = _pool_input(node, x)
    win = _window(node, x.shape[2:], kernel, bool(node.int("ceil_mode", 0)), pool=True)
    total = _window_sum(_pad_to_windows(x, win, 0.0, crop_end=True), win)
    include = bool(node.int("count_include_pad", 0))
    return total / _const(_window_counts(x.shape[2:], win, include, x.dtype))


def lp_pool(node: Node, x: Tensor) -> Tensor:
    """LpPool: ``(sum over the window of |x| ** p) ** (1 / p)``, zero padding."""
    kernel = _pool_input(node, x)
    p = node.int("p", 2)
    win = _window(node, x.shape[2:], kernel, bool(node.int("ceil_mode", 0)), pool=True)
    powered = x * x if p == 2 else x.abs() ** p
    total = _window_sum(_pad_to_windows(powered, win, 0.0), win)
    return total if p == 1 else total ** (1.0 / p)


def _check_lp(node: Node) -> None:
    _check_pool(node)
    if node.int("p", 2) <= 0:
        raise node.error(f"p must be a positive integer, but got {node.int('p')}")


def global_average_pool(node: Node, x: Tensor) -> Tensor:
    """GlobalAveragePool: the mean over all spatial dims, kept as size 1."""
    _require_float(node, X=x)
    return x.mean(dim=tuple(range(2, x.ndim)), keepdim=True)


def global_max_pool(node: Node, x: Tensor) -> Tensor:
    """GlobalMaxPool: the maximum over all spatial dims, kept as size 1."""
    _require_float(node, X=x)
    return x.amax(dim=tuple(range(2, x.ndim)), keepdim=True)


# ---------------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------------


def _check_batch_norm(node: Node) -> None:
    if node.int("training_mode", 0):
        raise node.error(
            "training_mode=1 is not supported: convlab imports inference graphs (batch "
            "statistics and running-mean outputs are a training-time graph)"
        )
    if node.int("spatial", 1) != 1:
        raise node.error("spatial=0 (per-activation statistics, opset < 9) is not supported")
    if len([o for o in node.outputs if o]) > 1:
        raise node.error("the running-statistics outputs exist only in training mode")


def batch_normalization(node: Node, x, scale, bias, mean, var) -> Tensor:
    """BatchNormalization (inference): ``(x - mean) / sqrt(var + epsilon) * scale + B``."""
    _require_float(node, X=x, scale=scale, B=bias, mean=mean, var=var)
    channels = x.shape[1] if x.ndim > 1 else None
    for name, t in (("scale", scale), ("B", bias), ("mean", mean), ("var", var)):
        if x.ndim < 2 or tuple(t.shape) != (channels,):
            raise node.error(
                f"{name} must have one value per channel ({channels}) of the input "
                f"{_shape_text(x.shape)}, but got shape {_shape_text(t.shape)}"
            )
    eps = node.float("epsilon", 1e-5)
    return F.batch_norm(x, mean.detach(), var.detach(), scale, bias, False, 0.0, eps)


def lrn(node: Node, x: Tensor) -> Tensor:
    """LRN: ``x / (bias + alpha / size * sum of x**2 over nearby channels) ** beta``."""
    _require_float(node, X=x)
    size = node.int("size")
    alpha, beta, bias = node.float("alpha", 1e-4), node.float("beta", 0.75), node.float("bias", 1.0)
    if x.ndim < 3:
        raise node.error(f"needs an input (N, C, ...), but got {_shape_text(x.shape)}")
    channels = x.shape[1]
    low, high = (size - 1) // 2, size - 1 - (size - 1) // 2
    padding = ((low, high),) + ((0, 0),) * (x.ndim - 2)
    squares = PadFunction.apply(x * x, padding, "constant", 0.0)
    total = None
    for offset in range(size):
        part = squares[:, offset : offset + channels]
        total = part if total is None else total + part
    return x / (total * (alpha / size) + bias) ** beta


def _check_lrn(node: Node) -> None:
    size = node.attr("size")
    if not isinstance(size, (int, np.integer)) or size <= 0:
        raise node.error(f"the attribute 'size' is required and must be positive, got {size!r}")


def layer_normalization(node: Node, x, scale, bias=None) -> Tensor:
    """LayerNormalization (opset 17): normalise over the dims from ``axis`` on."""
    _require_float(node, X=x, Scale=scale, B=bias)
    axis = _axis(node, node.int("axis", -1), x.ndim)
    shape = tuple(x.shape[axis:])
    if tuple(scale.shape) != shape or (bias is not None and tuple(bias.shape) != shape):
        raise node.error(
            f"Scale and B must have the normalised shape {_shape_text(shape)}, got "
            f"{_shape_text(scale.shape)}"
            + ("" if bias is None else f" and {_shape_text(bias.shape)}")
        )
    return F.layer_norm(x, shape, scale, bias, node.float("epsilon", 1e-5))


def _check_layer_norm(node: Node) -> None:
    for index in (1, 2):
        if node.wants_output(index):
            raise node.error("the Mean and InvStdDev outputs are not supported")


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def relu(node: Node, x: Tensor) -> Tensor:
    """Relu: ``max(x, 0)``."""
    _require_float(node, X=x)
    return F.relu(x)


def leaky_relu(node: Node, x: Tensor) -> Tensor:
    """LeakyRelu: ``x`` for ``x >= 0``, else ``alpha * x`` (alpha 0.01)."""
    _require_float(node, X=x)
    return F.leaky_relu(x, node.float("alpha", 0.01))


def _broadcasts_to(shape: Sequence[int], target: Sequence[int]) -> bool:
    """Whether ``shape`` broadcasts to ``target`` (one-way, as ONNX's PRelu and Gemm's C)."""
    try:
        return np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        return False


def prelu(node: Node, x: Tensor, slope: Tensor) -> Tensor:
    """PRelu: ``slope * x`` where ``x < 0``, the slope broadcast to ``x`` (e.g. ``(C, 1, 1)``)."""
    _require_float(node, X=x, slope=slope)
    if not _broadcasts_to(slope.shape, x.shape):
        raise node.error(
            f"slope {_shape_text(slope.shape)} does not broadcast to the input "
            f"{_shape_text(x.shape)}"
        )
    positive = F.relu(x)
    return positive + slope * (x - positive)


def sigmoid(node: Node, x: Tensor) -> Tensor:
    """Sigmoid: ``1 / (1 + exp(-x))``."""
    _require_float(node, X=x)
    return F.sigmoid(x)


def tanh(node: Node, x: Tensor) -> Tensor:
    """Tanh."""
    _require_float(node, X=x)
    return F.tanh(x)


def clip(node: Node, x: Tensor, low: Tensor | None = None, high: Tensor | None = None):
    """Clip: bounds as attributes (opset < 11) or optional scalar inputs (opset 11+)."""
    if node.opset < 11:
        lo, hi = node.float("min"), node.float("max")
    else:
        lo, hi = _scalar_of(node, low, "min"), _scalar_of(node, high, "max")
    if not _is_float(x):
        return _const(np.clip(x.data, lo, hi).astype(x.dtype))
    if lo is None and hi is None:
        return x
    return x.clamp(lo, hi)


def _softmax(node: Node, x: Tensor, log: bool) -> Tensor:
    _require_float(node, input=x)
    fn = F.log_softmax if log else F.softmax
    if node.opset >= 13:
        return fn(x, dim=_axis(node, node.int("axis", -1), x.ndim))
    # Before opset 13 the input is seen as 2-d: dims before ``axis`` against the rest.
    axis = _axis(node, node.int("axis", 1), max(x.ndim, 1)) if x.ndim else 0
    rows = math.prod(x.shape[:axis])
    return fn(x.reshape(rows, -1), dim=1).reshape(*x.shape)


def softmax(node: Node, x: Tensor) -> Tensor:
    """Softmax over ``axis`` (opset 13+, default -1) or the flattened trailing dims (< 13)."""
    return _softmax(node, x, log=False)


def log_softmax(node: Node, x: Tensor) -> Tensor:
    """LogSoftmax, with Softmax's two axis conventions."""
    return _softmax(node, x, log=True)


def elu(node: Node, x: Tensor) -> Tensor:
    """Elu: ``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    _require_float(node, X=x)
    return F.elu(x, node.float("alpha", 1.0))


def celu(node: Node, x: Tensor) -> Tensor:
    """Celu: ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    _require_float(node, X=x)
    return F.celu(x, node.float("alpha", 1.0))


def selu(node: Node, x: Tensor) -> Tensor:
    """Selu: ``gamma * (x if x > 0 else alpha * (exp(x) - 1))``."""
    _require_float(node, X=x)
    alpha = node.float("alpha", 1.67326319217681884765625)
    gamma = node.float("gamma", 1.05070102214813232421875)
    return F.elu(x, alpha) * gamma


def hard_sigmoid(node: Node, x: Tensor) -> Tensor:
    """HardSigmoid: ``clip(alpha * x + beta, 0, 1)``."""
    _require_float(node, X=x)
    return (x * node.float("alpha", 0.2) + node.float("beta", 0.5)).clamp(0.0, 1.0)


def hard_swish(node: Node, x: Tensor) -> Tensor:
    """HardSwish: ``x * clip(x / 6 + 1 / 2, 0, 1)``."""
    _require_float(node, X=x)
    return F.hardswish(x)


def softplus(node: Node, x: Tensor) -> Tensor:
    """Softplus: ``log(exp(x) + 1)``."""
    _require_float(node, X=x)
    return F.softplus(x)


def gelu(node: Node, x: Tensor) -> Tensor:
    """Gelu (opset 20): exact (erf) or ``approximate='tanh'``."""
    _require_float(node, X=x)
    return F.gelu(x, approximate=node.str("approximate", "none"))


class ErfFunction(Function):
    """erf(x), and its derivative ``2 / sqrt(pi) * exp(-x**2)``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf(x).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return (grad_output * (2.0 / math.sqrt(math.pi)) * np.exp(-x * x),)


def erf(node: Node, x: Tensor) -> Tensor:
    """Erf: the error function (used by exported GELUs)."""
    _require_float(node, input=x)
    return ErfFunction.apply(x)


def _unary(method: str, doc: str) -> Callable[..., Tensor]:
    def run(node: Node, x: Tensor) -> Tensor:
        if method == "neg" and not _is_float(x):
            return _const(-x.data)
        if method == "abs" and not _is_float(x):
            return _const(np.abs(x.data))
        _require_float(node, X=x)
        if method == "reciprocal":
            return 1.0 / x
        if method == "neg":
            return -x
        return getattr(x, method)()

    run.__doc__ = doc
    run.__name__ = method
    return run


neg = _unary("neg", "Neg: ``-x``.")
abs_ = _unary("abs", "Abs: ``|x|``.")
exp = _unary("exp", "Exp.")
log = _unary("log", "Log (natural).")
sqrt = _unary("sqrt", "Sqrt.")
reciprocal = _unary("reciprocal", "Reciprocal: ``1 / x``.")


def sign(node: Node, x: Tensor) -> Tensor:
    """Sign: -1, 0 or 1 (a constant for autograd: its derivative is 0 almost everywhere)."""
    return _const(np.sign(x.data))


def pow_(node: Node, x: Tensor, y: Tensor) -> Tensor:
    """Pow: ``x ** y`` with broadcasting; a one-value exponent is a scalar power."""
    _require_float(node, X=x)
    if y.data.size == 1 and y.ndim <= x.ndim:
        value = y.data.reshape(-1)[0].item()
        result = x**value
        return result.reshape(*np.broadcast_shapes(x.shape, y.shape))
    return x ** (y if _is_float(y) else y.to(x.dtype))


# ---------------------------------------------------------------------------------------------
# Arithmetic and matrix products
# ---------------------------------------------------------------------------------------------


def _broadcast_check(node: Node, *tensors: Tensor) -> None:
    try:
        np.broadcast_shapes(*(t.shape for t in tensors))
    except ValueError:
        shapes = ", ".join(_shape_text(t.shape) for t in tensors)
        raise node.error(f"the input shapes {shapes} do not broadcast together") from None


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.any(b == 0):
        raise ZeroDivisionError("integer division by zero")
    quotient = np.abs(a) // np.abs(b)
    return (np.sign(a) * np.sign(b) * quotient).astype(np.result_type(a, b))  # truncation


def _arith(op: str) -> Callable[..., Tensor]:
    float_ops = {
        "Add": lambda a, b: a + b,
        "Sub": lambda a, b: a - b,
        "Mul": lambda a, b: a * b,
        "Div": lambda a, b: a / b,
    }
    int_ops = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": _int_div}

    def run(node: Node, a: Tensor, b: Tensor) -> Tensor:
        _broadcast_check(node, a, b)
        return _numpy_or(node, (a, b), float_ops[op], int_ops[op])

    run.__doc__ = f"{op}: element-wise, NumPy broadcasting; integer Div truncates."
    run.__name__ = op.lower()
    return run


add, sub, mul, div = (_arith(op) for op in ("Add", "Sub", "Mul", "Div"))


def _variadic(op: str, combine, int_combine) -> Callable[..., Tensor]:
    def run(node: Node, *inputs: Tensor) -> Tensor:
        _broadcast_check(node, *inputs)
        return _numpy_or(
            node,
            inputs,
            lambda *ts: functools.reduce(combine, ts),
            lambda *arrays: functools.reduce(int_combine, arrays),
        )

    run.__doc__ = f"{op}: element-wise over any number of inputs, NumPy broadcasting."
    run.__name__ = op.lower()
    return run


sum_ = _variadic("Sum", lambda a, b: a + b, np.add)
max_ = _variadic("Max", maximum, np.maximum)
min_ = _variadic("Min", minimum, np.minimum)


def mat_mul(node: Node, a: Tensor, b: Tensor) -> Tensor:
    """MatMul: NumPy's matmul (1-d operands, batch broadcasting)."""
    _require_float(node, A=a, B=b)
    try:
        return matmul(a, b)
    except (ValueError, RuntimeError) as error:
        shapes = f"{_shape_text(a.shape)} and {_shape_text(b.shape)}"
        raise node.error(f"cannot multiply {shapes}: {error}") from None


def gemm(node: Node, a: Tensor, b: Tensor, c: Tensor | None = None) -> Tensor:
    """Gemm: ``alpha * A' @ B' + beta * C`` (A', B' optionally transposed, C broadcast)."""
    _require_float(node, A=a, B=b, C=c)
    if a.ndim != 2 or b.ndim != 2:
        raise node.error(
            f"A and B must be matrices, but got {_shape_text(a.shape)} and {_shape_text(b.shape)}"
        )
    alpha, beta = node.float("alpha", 1.0), node.float("beta", 1.0)
    a = a.t() if node.int("transA", 0) else a
    inner = b.shape[1] if node.int("transB", 0) else b.shape[0]
    if a.shape[1] != inner:
        raise node.error(
            f"A' {_shape_text(a.shape)} and B' (inner size {inner}) cannot be multiplied"
        )
    out_features = b.shape[0] if node.int("transB", 0) else b.shape[1]
    if c is not None and not _broadcasts_to(c.shape, (a.shape[0], out_features)):
        raise node.error(
            f"C {_shape_text(c.shape)} does not broadcast to ({a.shape[0]}, {out_features})"
        )
    if node.int("transB", 0) and alpha == 1.0 and beta == 1.0:
        if c is None or tuple(c.shape) == (out_features,):
            return F.linear(a, b, c)  # the fully connected layer, as PyTorch exports it
    y = matmul(a, b.t() if node.int("transB", 0) else b)
    if alpha != 1.0:
        y = y * alpha
    if c is not None and beta != 0.0:
        y = y + (c if beta == 1.0 else c * beta)
    return y


# ---------------------------------------------------------------------------------------------
# Shapes: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Shape, Gather, ...
# ---------------------------------------------------------------------------------------------


def _reshaped(x: Tensor, shape: Sequence[int]) -> Tensor:
    shape = tuple(int(s) for s in shape)
    if tuple(x.shape) == shape:
        return x
    if _is_float(x):
        return x.reshape(*shape) if shape else x.reshape(())
    return _const(x.data.reshape(shape))


def flatten(node: Node, x: Tensor) -> Tensor:
    """Flatten: to 2-d, ``(prod(dims before axis), prod(dims from axis))``."""
    axis = node.int("axis", 1)
    if not -x.ndim <= axis <= x.ndim:
        raise node.error(f"axis={axis} is out of range for a tensor of rank {x.ndim}")
    axis = axis + x.ndim if axis < 0 else axis
    return _reshaped(x, (math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))


def reshape(node: Node, x: Tensor, shape: Tensor) -> Tensor:
    """Reshape: 0 copies the input's dim (unless allowzero=1), -1 is inferred."""
    wanted = list(_ints_of(node, shape, "shape"))
    allowzero = node.int("allowzero", 0)
    for i, s in enumerate(wanted):
        if s == 0 and not allowzero:
            if i >= x.ndim:
                raise node.error(
                    f"shape {wanted} copies dim {i} (a 0), but the input "
                    f"{_shape_text(x.shape)} has only {x.ndim} dims"
                )
            wanted[i] = x.shape[i]
    if wanted.count(-1) > 1 or any(s < -1 for s in wanted):
        raise node.error(f"shape {wanted} may contain one -1 and no other negative value")
    if -1 in wanted:
        known = math.prod(s for s in wanted if s != -1)
        if known == 0 or x.data.size % known:
            raise node.error(
                f"cannot reshape {_shape_text(x.shape)} ({x.data.size} values) to {wanted}"
            )
        wanted[wanted.index(-1)] = x.data.size // known
    if math.prod(wanted) != x.data.size:
        raise node.error(
            f"cannot reshape {_shape_text(x.shape)} ({x.data.size} values) to {wanted}"
        )
    return _reshaped(x, wanted)


def transpose(node: Node, x: Tensor) -> Tensor:
    """Transpose: permute the dims (default: reverse them)."""
    perm = node.ints("perm", tuple(reversed(range(x.ndim))))
    if sorted(perm) != list(range(x.ndim)):
        raise node.error(f"perm {list(perm)} is not a permutation of the {x.ndim} dims")
    if _is_float(x):
        return x.permute(*perm)
    return _const(np.transpose(x.data, perm))


def _axes(node: Node, t: Tensor | None, attr: str = "axes") -> tuple[int, ...] | None:
    """Axes from the attribute (older opsets) or the optional input (newer ones)."""
    if attr in node.attrs:
        return node.ints(attr)
    if t is None:
        return None
    return _ints_of(node, t, attr)


def squeeze(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    """Squeeze: drop the listed size-1 dims, or every size-1 dim."""
    chosen = _axes(node, axes)
    if chosen is None or not chosen:
        keep = [s for s in x.shape if s != 1]
    else:
        chosen = {_axis(node, a, x.ndim, "axes") for a in chosen}
        for a in chosen:
            if x.shape[a] != 1:
                raise node.error(f"cannot squeeze dim {a} of {_shape_text(x.shape)}: not size 1")
        keep = [s for i, s in enumerate(x.shape) if i not in chosen]
    return _reshaped(x, keep)


def unsqueeze(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
    """Unsqueeze: insert size-1 dims at ``axes`` (positions in the output)."""
    chosen = _axes(node, axes)
    if not chosen:
        raise node.error("needs axes (an attribute before opset 13, an input from 13)")
    rank = x.ndim + len(chosen)
    positions = sorted(_axis(node, a, rank, "axes") for a in chosen)
    if len(set(positions)) != len(positions):
        raise node.error(f"axes {list(chosen)} repeat a position")
    shape = list(x.shape)
    for p in positions:
        shape.insert(p, 1)
    return _reshaped(x, shape)


def concat(node: Node, *inputs: Tensor) -> Tensor:
    """Concat along ``axis``; the other dims must agree."""
    first = inputs[0]
    axis = _axis(node, node.int("axis"), max(first.ndim, 1))
    for t in inputs:
        if t.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis
        ):
            shapes = ", ".join(_shape_text(t.shape) for t in inputs)
            raise node.error(f"cannot concatenate {shapes} along axis {axis}")
    if all(not _is_float(t) for t in inputs):
        return _const(np.concatenate([t.data for t in inputs], axis=axis))
    return cat(list(inputs), dim=axis)


def _check_concat(node: Node) -> None:
    if node.int("axis") is None:
        raise node.error("the attribute 'axis' is required")


def shape(node: Node, x: Tensor) -> Tensor:
    """Shape: the input's dims as int64, sliced by ``start``/``end`` (opset 15)."""
    start, end = node.int("start", 0), node.int("end")
    return _const(np.array(x.shape[start:end], np.int64))


def gather(node: Node, data: Tensor, indices: Tensor) -> Tensor:
    """Gather: pick entries along ``axis``; negative indices count from the end."""
    axis = _axis(node, node.int("axis", 0), max(data.ndim, 1))
    if indices.dtype.kind not in "iu":
        raise node.error(f"indices must be integers, but got {indices.dtype}")
    size = data.shape[axis]
    index = indices.data.astype(np.int64)
    if index.size and (index.min() < -size or index.max() >= size):
        raise node.error(
            f"indices {index.reshape(-1).tolist()[:8]} are out of range for dim {axis} of "
            f"size {size}"
        )
    index = np.where(index < 0, index + size, index)
    key = (slice(None),) * axis + (index,)
    if not _is_float(data):
        return _const(data.data[key])
    return data[key]


def slice_(node: Node, data: Tensor, starts=None, ends=None, axes=None, steps=None) -> Tensor:
    """Slice: start/end clamped as ONNX says; negative steps walk backwards."""
    if node.opset < 10:
        starts_v, ends_v = node.ints("starts"), node.ints("ends")
        axes_v, steps_v = node.ints("axes"), None
    else:
        starts_v, ends_v = _ints_of(node, starts, "starts"), _ints_of(node, ends, "ends")
        axes_v = _ints_of(node, axes, "axes") if axes is not None else None
        steps_v = _ints_of(node, steps, "steps") if steps is not None else None
    axes_v = axes_v if axes_v else tuple(range(len(starts_v)))
    steps_v = steps_v if steps_v else (1,) * len(starts_v)
    if not len(starts_v) == len(ends_v) == len(axes_v) == len(steps_v):
        raise node.error("starts, ends, axes and steps must have the same length")
    result = data
    for start, end, axis, step in zip(starts_v, ends_v, axes_v, steps_v):
        axis = _axis(node, axis, data.ndim, "axes")
        size = data.shape[axis]
        if step == 0:
            raise node.error("steps must be non-zero")
        start = start + size if start < 0 else start
        end = end + size if end < 0 else end
        if step > 0:
            start, end = min(max(start, 0), size), min(max(end, 0), size)
            key = slice(start, end, step)
        else:
            start, end = min(max(start, 0), size - 1), min(max(end, -1), size - 1)
            key = np.arange(start, end, step)
        full_key = (slice(None),) * axis + (key,)
        result = result[full_key] if _is_float(result) else _const(result.data[full_key])
    return result


def expand(node: Node, x: Tensor, shape: Tensor) -> Tensor:
    """Expand: broadcast to ``shape`` (both ways, as NumPy does)."""
    wanted = _ints_of(node, shape, "shape")
    try:
        target = np.broadcast_shapes(x.shape, wanted)
    except ValueError:
        raise node.error(f"cannot expand {_shape_text(x.shape)} to {list(wanted)}") from None
    if not _is_float(x):
        return _const(np.broadcast_to(x.data, target).copy())
    lifted = x.reshape(*((1,) * (len(target) - x.ndim) + tuple(x.shape)))
    return lifted.expand(*target)


def identity(node: Node, x: Tensor) -> Tensor:
    """Identity."""
    return x


def dropout(node: Node, x: Tensor, ratio=None, training_mode=None):
    """Dropout at inference: the input unchanged (and an all-true mask if asked for)."""
    if node.wants_output(1):
        return x, _const(np.ones(x.shape, np.bool_))
    return x


def cast(node: Node, x: Tensor) -> Tensor:
    """Cast to the element type ``to``; float to float stays differentiable."""
    dtype = ONNX_DTYPES[node.int("to")]
    if dtype == x.dtype:
        return x
    if dtype.kind == "f" and _is_float(x):
        return x.to(dtype)
    return _const(x.data.astype(dtype))


def _check_cast(node: Node) -> None:
    if node.int("to") not in ONNX_DTYPES:
        raise node.error(f"casting to ONNX element type {node.attr('to')} is not supported")


def constant(node: Node) -> Tensor:
    """Constant: ``value`` (a tensor), or ``value_float(s)`` / ``value_int(s)``."""
    attrs = node.attrs
    if "value" in attrs:
        return _const(np.array(attrs["value"]))
    if "value_float" in attrs:
        return _const(np.array(attrs["value_float"], np.float32))
    if "value_floats" in attrs:
        return _const(np.array(attrs["value_floats"], np.float32))
    if "value_int" in attrs:
        return _const(np.array(attrs["value_int"], np.int64))
    return _const(np.array(attrs["value_ints"], np.int64))


def _check_constant(node: Node) -> None:
    supported = ("value", "value_float", "value_floats", "value_int", "value_ints")
    present = [name for name in node.attrs if name in supported]
    others = [name for name in node.attrs if name not in supported]
    if others:
        raise node.error(f"the attribute {others[0]!r} is not supported (only {supported})")
    if len(present) != 1:
        raise node.error(f"needs exactly one of {supported}, but got {present}")
    if "value" in node.attrs and not isinstance(node.attrs["value"], np.ndarray):
        raise node.error("value must be a dense tensor")


def constant_of_shape(node: Node, shape: Tensor) -> Tensor:
    """ConstantOfShape: a tensor of ``shape`` filled with ``value`` (default float32 0)."""
    dims = _ints_of(node, shape, "input")
    if any(d < 0 for d in dims):
        raise node.error(f"the shape {list(dims)} has a negative dim")
    value = node.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    if fill.size != 1:
        raise node.error(f"value must hold one element, but got {fill.size}")
    return _const(np.full(dims, fill[0], fill.dtype))


# ---------------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------------


def _reduce(op: str) -> Callable[..., Tensor]:
    def run(node: Node, x: Tensor, axes: Tensor | None = None) -> Tensor:
        _require_float(node, data=x)
        chosen = _axes(node, axes)
        keep = bool(node.int("keepdims", 1))
        if not chosen:
            if node.int("noop_with_empty_axes", 0):
                return x
            chosen = tuple(range(x.ndim))
        dims = tuple(sorted({_axis(node, a, x.ndim, "axes") for a in chosen}))
        if op == "ReduceMean":
            return x.mean(dim=dims, keepdim=keep)
        if op == "ReduceSum":
            return x.sum(dim=dims, keepdim=keep)
        return x.amax(dim=dims, keepdim=keep)

    run.__doc__ = f"{op}: over ``axes`` (all when absent), keepdims default 1."
    run.__name__ = op.lower()
    return run


reduce_mean, reduce_sum, reduce_max = (
    _reduce(op) for op in ("ReduceMean", "ReduceSum", "ReduceMax")
)


# ---------------------------------------------------------------------------------------------
# Pad
# ---------------------------------------------------------------------------------------------

_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


def _check_pad(node: Node) -> None:
    mode = node.str("mode", "constant")
    if mode not in _PAD_MODES:
        raise node.error(f"mode must be one of {', '.join(_PAD_MODES)}, but got {mode!r}")


def pad(node: Node, x: Tensor, pads=None, constant_value=None, axes=None) -> Tensor:
    """Pad: begin/end amounts per axis (negative ones crop), modes constant/reflect/edge/wrap."""
    mode = node.str("mode", "constant")
    if node.opset < 11:
        amounts, value = node.ints("pads", ()), node.float("value", 0.0)
        axes_v = None
    else:
        amounts = _ints_of(node, pads, "pads")
        value = _scalar_of(node, constant_value, "constant_value") or 0.0
        axes_v = _ints_of(node, axes, "axes") if axes is not None else None
    axes_v = tuple(range(x.ndim)) if not axes_v else tuple(_axis(node, a, x.ndim) for a in axes_v)
    if len(amounts) != 2 * len(axes_v):
        raise node.error(
            f"pads must have {2 * len(axes_v)} values for {len(axes_v)} axes, got {list(amounts)}"
        )
    pairs = [(0, 0)] * x.ndim
    for i, a in enumerate(axes_v):
        pairs[a] = (amounts[i], amounts[i + len(axes_v)])
    # Crop the negative amounts first, so that reflect/edge/wrap pad the cropped tensor.
    key = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for s, (lo, hi) in zip(x.shape, pairs))
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        if any(k.start > k.stop for k in key):
            raise node.error(f"pads {list(amounts)} crop more than {_shape_text(x.shape)} has")
        x = x[key] if _is_float(x) else _const(x.data[key])
    pairs = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pairs)
    if all(p == (0, 0) for p in pairs):
        return x
    if mode != "constant":
        for size, (lo, hi) in zip(x.shape, pairs):
            if (lo or hi) and size == 0:
                raise node.error(f"mode {mode!r} cannot pad an empty dim of {_shape_text(x.shape)}")
    kind = _PAD_MODES[mode]
    if not _is_float(x):
        if mode == "constant":
            return _const(np.pad(x.data, pairs, constant_values=value))
        return _const(np.pad(x.data, pairs, mode=mode))  # NumPy's names are ONNX's
    return PadFunction.apply(x, pairs, kind, float(value))


# ---------------------------------------------------------------------------------------------
# Resize and Upsample
# ---------------------------------------------------------------------------------------------

_RESIZE_MODES = ("nearest", "linear", "cubic")
_COORDINATE_MODES = (
    "half_pixel",
    "half_pixel_symmetric",
    "pytorch_half_pixel",
    "align_corners",
    "asymmetric",
    "tf_crop_and_resize",
    "tf_half_pixel_for_nn",
)
_NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_ASPECT_POLICIES = ("stretch", "not_larger", "not_smaller")


def _check_resize(node: Node) -> None:
    mode = node.str("mode", "nearest")
    if node.op_type == "Upsample":
        if mode not in ("nearest", "linear", "bilinear"):
            raise node.error(f"mode must be nearest or linear, but got {mode!r}")
        return
    if mode not in _RESIZE_MODES:
        raise node.error(f"mode must be one of {', '.join(_RESIZE_MODES)}, but got {mode!r}")
    ctm = node.str("coordinate_transformation_mode", "half_pixel")
    if ctm not in _COORDINATE_MODES:
        raise node.error(f"coordinate_transformation_mode {ctm!r} is not supported")
    nearest = node.str("nearest_mode", "round_prefer_floor")
    if nearest not in _NEAREST_MODES:
        raise node.error(f"nearest_mode {nearest!r} is not supported")
    if node.int("antialias", 0):
        raise node.error("antialias=1 (opset 18 anti-aliased downsampling) is not supported")
    policy = node.str("keep_aspect_ratio_policy", "stretch")
    if policy not in _ASPECT_POLICIES:
        raise node.error(f"keep_aspect_ratio_policy {policy!r} is not supported")
    if node.opset >= 11 and not (node.has_input(2) or node.has_input(3)):
        raise node.error("needs scales or sizes (inputs 2 and 3 are both absent)")


def _source_coords(
    ctm: str, out: int, size: int, scale: np.float32, roi: tuple[float, float]
) -> np.ndarray:
    """Where each output position samples the input (onnxruntime's float32 arithmetic)."""
    f = np.float32
    i = np.arange(out, dtype=f)
    half = f(0.5)
    if ctm == "asymmetric":
        return i / scale
    if ctm == "align_corners":
        return np.zeros(out, f) if out == 1 else i * f(size - 1) / f(out - 1)
    if ctm == "pytorch_half_pixel":
        return np.zeros(out, f) if out == 1 else (i + half) / scale - half
    if ctm == "tf_half_pixel_for_nn":
        return (i + half) / scale
    if ctm == "half_pixel_symmetric":
        adjustment = f(out) / (scale * f(size))
        center = f(size) / f(2)
        return center * (f(1) - adjustment) + (i + half) / scale - half
    if ctm == "tf_crop_and_resize":
        start, end = f(roi[0]), f(roi[1])
        if out == 1:
            return np.full(out, (end - start) * f(size - 1) / f(2) + start * f(size - 1), f)
        return start * f(size - 1) + i * (end - start) * f(size - 1) / f(out - 1)
    return (i + half) / scale - half  # half_pixel


def _nearest_index(x: np.ndarray, mode: str, scale: np.float32) -> np.ndarray:
    if mode == "simple":  # Upsample and Resize-10
        return np.ceil(x) if scale < 1 else np.trunc(x)
    if mode == "floor":
        return np.floor(x)
    if mode == "ceil":
        return np.ceil(x)
    away = np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))  # std::round: half away from 0
    if mode == "round_prefer_floor":
        return np.where(x == np.trunc(x) + np.float32(0.5), np.floor(x), away)
    return away


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic kernel at distances ``1 + t, t, 1 - t, 2 - t`` (taps floor - 1 .. + 2)."""
    a = np.float32(a)
    one, two = np.float32(1), np.float32(2)

    def near(d):
        return ((a + two) * d - (a + np.float32(3))) * d * d + one

    def far(d):
        return ((a * d - np.float32(5) * a) * d + np.float32(8) * a) * d - np.float32(4) * a

    return np.stack([far(t + one), near(t), near(one - t), far(two - t)])


def _resize_axis(x: Tensor, axis: int, out: int, scale, options: dict) -> Tensor:
    size = x.shape[axis]
    coords = _source_coords(options["ctm"], out, size, np.float32(scale), options["roi"][axis])
    mode = options["mode"]
    outside = None
    if options["ctm"] == "tf_crop_and_resize":
        outside = (coords < 0) | (coords > size - 1)
    if mode == "nearest":
        index = _nearest_index(coords, options["nearest"], np.float32(scale))
        taps = [np.clip(index, 0, size - 1).astype(np.int64)]
        weights = None
    elif mode == "linear":
        clamped = np.clip(coords, 0, size - 1)
        low = np.floor(clamped).astype(np.int64)
        high = np.minimum(low + 1, size - 1)
        frac = clamped - low
        taps, weights = [low, high], np.stack([np.float32(1) - frac, frac])
    else:
        low = np.floor(coords)
        frac = (coords - low).astype(np.float32)
        weights = _cubic_weights(frac, options["cubic_a"])
        raw = low.astype(np.int64)[None, :] + np.arange(-1, 3)[:, None]
        if options["exclude_outside"]:
            weights = np.where((raw >= 0) & (raw < size), weights, np.float32(0))
            weights = weights / weights.sum(axis=0, keepdims=True)
        taps = list(np.clip(raw, 0, size - 1))
    shape = [1] * x.ndim
    shape[axis] = out
    result = None
    for k, index in enumerate(taps):
        picked = x[(slice(None),) * axis + (index,)]
        if weights is not None:
            picked = picked * _const(weights[k].astype(x.dtype).reshape(shape))
        result = picked if result is None else result + picked
    if outside is not None and outside.any():
        keep = _const((~outside).astype(x.dtype).reshape(shape))
        fill = _const((outside * options["extrapolation"]).astype(x.dtype).reshape(shape))
        result = result * keep + fill
    return result


def _resize(node: Node, x: Tensor, scales, sizes, roi, options: dict) -> Tensor:
    _require_float(node, X=x)
    rank = x.ndim
    axes = node.ints("axes") if node.opset >= 18 else None
    axes = tuple(range(rank)) if axes is None else tuple(_axis(node, a, rank) for a in axes)
    roi_pairs = [(0.0, 1.0)] * rank
    if roi is not None and roi.data.size:
        values = [float(v) for v in roi.data.reshape(-1)]
        if len(values) != 2 * len(axes):
            raise node.error(f"roi must have {2 * len(axes)} values, but got {len(values)}")
        for i, a in enumerate(axes):
            roi_pairs[a] = (values[i], values[i + len(axes)])
    options = {**options, "roi": roi_pairs}
    in_shape = x.shape
    out_shape, scale_of = list(in_shape), [1.0] * rank
    if sizes is not None and sizes.data.size:
        wanted = _ints_of(node, sizes, "sizes")
        if len(wanted) != len(axes):
            raise node.error(f"sizes must have {len(axes)} values, but got {list(wanted)}")
        policy = node.str("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            ratios = [np.float32(w) / np.float32(in_shape[a]) for w, a in zip(wanted, axes)]
            common = min(ratios) if policy == "not_larger" else max(ratios)
            for a in axes:
                out_shape[a] = int(np.floor(common * np.float32(in_shape[a]) + np.float32(0.5)))
                scale_of[a] = common
        else:
            for w, a in zip(wanted, axes):
                out_shape[a] = w
                scale_of[a] = np.float32(w) / np.float32(in_shape[a])
    elif scales is not None and scales.data.size:
        values = [float(v) for v in scales.data.reshape(-1)]
        if len(values) != len(axes) or any(v <= 0 for v in values):
            raise node.error(f"scales must be {len(axes)} positive values, but got {values}")
        for v, a in zip(values, axes):
            span = np.float32(roi_pairs[a][1] - roi_pairs[a][0])
            if options["ctm"] != "tf_crop_and_resize":
                span = np.float32(1)
            out_shape[a] = int(np.float32(in_shape[a]) * span * np.float32(v))
            scale_of[a] = np.float32(v)
    else:
        raise node.error("needs non-empty scales or sizes")
    if any(o <= 0 for o in out_shape):
        raise node.error(f"the output shape {out_shape} from input {list(in_shape)} is empty")
    y = x
    for a in range(rank):
        unchanged = out_shape[a] == in_shape[a] and scale_of[a] == 1.0
        if not unchanged or options["ctm"] == "tf_crop_and_resize":
            y = _resize_axis(y, a, out_shape[a], scale_of[a], options)
    return y


def resize(node: Node, x: Tensor, roi=None, scales=None, sizes=None) -> Tensor:
    """Resize: nearest / linear / cubic per axis, every coordinate_transformation_mode."""
    if node.opset < 11:  # Resize-10 reads (X, scales): the second input is the scales
        return upsample(node, x, roi)
    options = {
        "mode": node.str("mode", "nearest"),
        "ctm": node.str("coordinate_transformation_mode", "half_pixel"),
        "nearest": node.str("nearest_mode", "round_prefer_floor"),
        "cubic_a": node.float("cubic_coeff_a", -0.75),
        "exclude_outside": node.int("exclude_outside", 0),
        "extrapolation": node.float("extrapolation_value", 0.0),
    }
    return _resize(node, x, scales, sizes, roi, options)


def upsample(node: Node, x: Tensor, scales: Tensor | None = None) -> Tensor:
    """Upsample (opsets 7-9, deprecated in 10): Resize with asymmetric coordinates."""
    if scales is None:
        scales = _const(np.array(node.floats("scales", ()), np.float32))
    mode = node.str("mode", "nearest")
    options = {
        "mode": "linear" if mode == "bilinear" else mode,
        "ctm": "asymmetric",
        "nearest": "simple",
        "cubic_a": -0.75,
        "exclude_outside": 0,
        "extrapolation": 0.0,
    }
    return _resize(node, x, scales, None, None, options)


# ---------------------------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------------------------

_ANY = 1 << 30

OPERATORS: dict[str, Operator] = {
    # convolution and pooling
    "Conv": Operator(conv, (2, 3), _check_window_attrs),
    "ConvTranspose": Operator(conv_transpose, (2, 3), _check_window_attrs),
    "MaxPool": Operator(max_pool, (1, 1), _check_pool),
    "AveragePool": Operator(average_pool, (1, 1), _check_pool),
    "LpPool": Operator(lp_pool, (1, 1), _check_lp),
    "GlobalAveragePool": Operator(global_average_pool, (1, 1)),
    "GlobalMaxPool": Operator(global_max_pool, (1, 1)),
    # normalisation
    "BatchNormalization": Operator(
        batch_normalization, (5, 5), _check_batch_norm, state=frozenset({3, 4})
    ),
    "LRN": Operator(lrn, (1, 1), _check_lrn),
    "LayerNormalization": Operator(layer_normalization, (2, 3), _check_layer_norm),
    # activations
    "Relu": Operator(relu, (1, 1)),
    "LeakyRelu": Operator(leaky_relu, (1, 1)),
    "PRelu": Operator(prelu, (2, 2)),
    "Sigmoid": Operator(sigmoid, (1, 1)),
    "Tanh": Operator(tanh, (1, 1)),
    "Clip": Operator(clip, (1, 3), static=frozenset({1, 2})),
    "Softmax": Operator(softmax, (1, 1)),
    "LogSoftmax": Operator(log_softmax, (1, 1)),
    "Elu": Operator(elu, (1, 1)),
    "Celu": Operator(celu, (1, 1)),
    "Selu": Operator(selu, (1, 1)),
    "HardSigmoid": Operator(hard_sigmoid, (1, 1)),
    "HardSwish": Operator(hard_swish, (1, 1)),
    "Softplus": Operator(softplus, (1, 1)),
    "Gelu": Operator(gelu, (1, 1)),
    "Erf": Operator(erf, (1, 1)),
    # element-wise arithmetic
    "Add": Operator(add, (2, 2)),
    "Sub": Operator(sub, (2, 2)),
    "Mul": Operator(mul, (2, 2)),
    "Div": Operator(div, (2, 2)),
    "Sum": Operator(sum_, (1, _ANY)),
    "Max": Operator(max_, (1, _ANY)),
    "Min": Operator(min_, (1, _ANY)),
    "Neg": Operator(neg, (1, 1)),
    "Abs": Operator(abs_, (1, 1)),
    "Exp": Operator(exp, (1, 1)),
    "Log": Operator(log, (1, 1)),
    "Sqrt": Operator(sqrt, (1, 1)),
    "Reciprocal": Operator(reciprocal, (1, 1)),
    "Sign": Operator(sign, (1, 1)),
    "Pow": Operator(pow_, (2, 2), static=frozenset({1})),
    # matrix products
    "MatMul": Operator(mat_mul, (2, 2)),
    "Gemm": Operator(gemm, (2, 3)),
    # shapes and data movement
    "Concat": Operator(concat, (1, _ANY), _check_concat),
    "Flatten": Operator(flatten, (1, 1)),
    "Reshape": Operator(reshape, (2, 2), static=frozenset({1})),
    "Transpose": Operator(transpose, (1, 1)),
    "Squeeze": Operator(squeeze, (1, 2), static=frozenset({1})),
    "Unsqueeze": Operator(unsqueeze, (1, 2), static=frozenset({1})),
    "Pad": Operator(pad, (1, 4), _check_pad, static=frozenset({1, 2, 3})),
    "Resize": Operator(resize, (1, 4), _check_resize, static=frozenset({1, 2, 3})),
    "Upsample": Operator(upsample, (1, 2), _check_resize, static=frozenset({1})),
    "Slice": Operator(slice_, (1, 5), static=frozenset({1, 2, 3, 4})),
    "Gather": Operator(gather, (2, 2), static=frozenset({1})),
    "Expand": Operator(expand, (2, 2), static=frozenset({1})),
    "Shape": Operator(shape, (1, 1)),
    "ConstantOfShape": Operator(constant_of_shape, (1, 1), static=frozenset({0})),
    "Constant": Operator(constant, (0, 0), _check_constant),
    "Identity": Operator(identity, (1, 1)),
    "Dropout": Operator(dropout, (1, 3), static=frozenset({1, 2})),
    "Cast": Operator(cast, (1, 1), _check_cast),
    # reductions
    "ReduceMean": Operator(reduce_mean, (1, 2), static=frozenset({1})),
    "ReduceSum": Operator(reduce_sum, (1, 2), static=frozenset({1})),
    "ReduceMax": Operator(reduce_max, (1, 2), static=frozenset({1})),
}
