"""Write a convlab model as an ONNX graph that onnxruntime (or convlab) can run.

The exporter walks the model: ``Sequential`` containers in order, and each layer through one
entry of :data:`EXPORTERS`, which emits the ONNX nodes with the layer's exact PyTorch semantics
(padding modes, ceil mode, ``count_include_pad``, running statistics, ...). The example input
runs through the model at the same time, so every layer sees its real input shape. Weights are
initializers named as in ``model.state_dict()`` (``"0.weight"``), like ``torch.onnx.export``.

A model whose own ``forward`` is not a plain chain (a custom ``Module`` with children) cannot be
walked this way and is refused with its path and type; so is a layer setting ONNX cannot express
(e.g. ``divisor_override``, ``return_indices``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from convlab import nn, shapes
from convlab.autograd import Tensor, no_grad
from convlab.onnx.importer import require_onnx
from convlab.onnx.ops import OnnxError

__all__ = ["EXPORTERS", "export"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_GAMMA = 1.0507009873554804934193349852946


class _Graph:
    """The nodes and initializers being built, with unique value names."""

    def __init__(self, onnx, opset: int, dtype: np.dtype) -> None:
        self.onnx, self.opset, self.dtype = onnx, opset, dtype
        self.nodes: list = []
        self.initializers: list = []
        self.names: set[str] = set()
        self.counter = 0

    def unique(self, base: str) -> str:
        name = base
        while name in self.names:
            self.counter += 1
            name = f"{base}_{self.counter}"
        self.names.add(name)
        return name

    def initializer(self, name: str, array: np.ndarray) -> str:
        name = self.unique(name)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def scalar(self, name: str, value: float) -> str:
        return self.initializer(name, np.array(value, self.dtype))

    def ints(self, name: str, values) -> str:
        return self.initializer(name, np.array(values, np.int64))

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        base = f"/{prefix.rstrip('.').replace('.', '/')}/{op}" if prefix else f"/{op}"
        output = self.unique(f"{base}_output_0")
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, [output], name=self.unique(base), **attrs)
        )
        return output


def _weights(g: _Graph, module: nn.Module, prefix: str, names=("weight", "bias")) -> list[str]:
    inputs = []
    for name in names:
        value = getattr(module, name, None)
        if value is not None:
            inputs.append(g.initializer(prefix + name, value.data))
    return inputs


def _tuple(value, n: int, name: str) -> tuple[int, ...]:
    return shapes.ntuple(value, n, name)


def _refuse(prefix: str, module: nn.Module, why: str) -> OnnxError:
    where = prefix.rstrip(".") or "<model>"
    return OnnxError(f"cannot export {where} ({type(module).__name__}): {why}")


# ---------------------------------------------------------------------------------------------
# Convolution and pooling
# ---------------------------------------------------------------------------------------------


def _conv(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    n = x.ndim - 2
    kernel, stride, dilation = (
        _tuple(m.kernel_size, n, "kernel_size"),
        _tuple(m.stride, n, "stride"),
        _tuple(m.dilation, n, "dilation"),
    )
    if m.transposed:
        pads = _tuple(m.padding, n, "padding")
        return g.node(
            "ConvTranspose",
            [name, *_weights(g, m, prefix)],
            prefix,
            kernel_shape=list(kernel),
            strides=list(stride),
            pads=list(pads) * 2,
            dilations=list(dilation),
            output_padding=list(_tuple(m.output_padding, n, "output_padding")),
            group=m.groups,
        )
    if m.padding == "same":
        pairs = [shapes.same_padding(k, d) for k, d in zip(kernel, dilation)]
    elif m.padding == "valid":
        pairs = [(0, 0)] * n
    else:
        pairs = [(p, p) for p in _tuple(m.padding, n, "padding")]
    if m.padding_mode != "zeros" and any(p != (0, 0) for p in pairs):
        mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[m.padding_mode]
        if mode == "wrap" and g.opset < 19:
            raise _refuse(prefix, m, "padding_mode='circular' needs opset 19 (Pad mode 'wrap')")
        amounts = [0, 0] + [lo for lo, _ in pairs] + [0, 0] + [hi for _, hi in pairs]
        name = g.node("Pad", [name, g.ints(prefix + "pads", amounts)], prefix, mode=mode)
        pairs = [(0, 0)] * n
    return g.node(
        "Conv",
        [name, *_weights(g, m, prefix)],
        prefix,
        kernel_shape=list(kernel),
        strides=list(stride),
        pads=[lo for lo, _ in pairs] + [hi for _, hi in pairs],
        dilations=list(dilation),
        group=m.groups,
    )


def _max_pool(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if m.return_indices:
        raise _refuse(prefix, m, "return_indices=True has no single-output ONNX form")
    n = x.ndim - 2
    return g.node(
        "MaxPool",
        [name],
        prefix,
        kernel_shape=list(_tuple(m.kernel_size, n, "kernel_size")),
        strides=list(_tuple(m.stride, n, "stride")),
        pads=list(_tuple(m.padding, n, "padding")) * 2,
        dilations=list(_tuple(m.dilation, n, "dilation")),
        ceil_mode=int(bool(m.ceil_mode)),
    )


def _avg_pool(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if getattr(m, "divisor_override", None) is not None:
        raise _refuse(prefix, m, "divisor_override has no ONNX equivalent")
    n = x.ndim - 2
    return g.node(
        "AveragePool",
        [name],
        prefix,
        kernel_shape=list(_tuple(m.kernel_size, n, "kernel_size")),
        strides=list(_tuple(m.stride, n, "stride")),
        pads=list(_tuple(m.padding, n, "padding")) * 2,
        ceil_mode=int(bool(m.ceil_mode)),
        count_include_pad=int(bool(m.count_include_pad)),
    )


def _lp_pool(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    n = x.ndim - 2
    p = float(m.norm_type)
    if not (p.is_integer() and p > 0 and int(p) % 2 == 0):
        # ONNX's LpPool sums |x| ** p, PyTorch's x ** p: equal only for even powers.
        raise _refuse(prefix, m, f"norm_type={m.norm_type}: only even integer powers match ONNX")
    kernel = _tuple(m.kernel_size, n, "kernel_size")
    stride = kernel if m.stride is None else _tuple(m.stride, n, "stride")
    partial = any(
        (o - 1) * s + k > size for o, s, k, size in zip(y.shape[2:], stride, kernel, x.shape[2:])
    )
    if partial:
        # PyTorch scales a partial ceil-mode window's mean by the full kernel size; ONNX sums.
        raise _refuse(prefix, m, "ceil_mode with a partial last window differs from ONNX")
    return g.node(
        "LpPool",
        [name],
        prefix,
        kernel_shape=list(kernel),
        strides=list(stride),
        p=int(p),
    )


def _adaptive_pool(op: str, global_op: str) -> Callable:
    def emit(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
        if getattr(m, "return_indices", False):
            raise _refuse(prefix, m, "return_indices=True has no single-output ONNX form")
        inputs, outputs = x.shape[2:], y.shape[2:]
        if all(o == 1 for o in outputs):
            return g.node(global_op, [name], prefix)
        if any(i % o for i, o in zip(inputs, outputs)):
            raise _refuse(
                prefix, m, f"output size {list(outputs)} does not divide the input {list(inputs)}"
            )
        kernel = [i // o for i, o in zip(inputs, outputs)]
        return g.node(op, [name], prefix, kernel_shape=kernel, strides=kernel)

    return emit


# ---------------------------------------------------------------------------------------------
# Normalisation, linear and shape layers
# ---------------------------------------------------------------------------------------------


def _batch_norm(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if m.running_mean is None:
        raise _refuse(prefix, m, "track_running_stats=False normalises with batch statistics")
    channels = m.num_features
    dtype = m.running_mean.dtype
    scale = m.weight.data if m.weight is not None else np.ones(channels, dtype)
    bias = m.bias.data if m.bias is not None else np.zeros(channels, dtype)
    inputs = [
        name,
        g.initializer(prefix + "weight", scale),
        g.initializer(prefix + "bias", bias),
        g.initializer(prefix + "running_mean", m.running_mean.data),
        g.initializer(prefix + "running_var", m.running_var.data),
    ]
    momentum = 0.9 if m.momentum is None else 1.0 - float(m.momentum)
    return g.node("BatchNormalization", inputs, prefix, epsilon=float(m.eps), momentum=momentum)


def _layer_norm(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if g.opset < 17:
        raise _refuse(prefix, m, "LayerNormalization needs opset 17")
    shape = tuple(m.normalized_shape)
    dtype = x.dtype
    scale = m.weight.data if m.weight is not None else np.ones(shape, dtype)
    inputs = [name, g.initializer(prefix + "weight", scale)]
    if m.bias is not None:
        inputs.append(g.initializer(prefix + "bias", m.bias.data))
    return g.node("LayerNormalization", inputs, prefix, axis=-len(shape), epsilon=float(m.eps))


def _linear(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if x.ndim == 2:
        return g.node("Gemm", [name, *_weights(g, m, prefix)], prefix, transB=1)
    weight = g.initializer(prefix + "weight", m.weight.data)
    transposed = g.node("Transpose", [weight], prefix, perm=[1, 0])
    out = g.node("MatMul", [name, transposed], prefix)
    if m.bias is not None:
        out = g.node("Add", [out, g.initializer(prefix + "bias", m.bias.data)], prefix)
    return out


def _reshape(g: _Graph, prefix: str, name: str, target: list[int]) -> str:
    return g.node("Reshape", [name, g.ints(prefix + "shape", target)], prefix)


def _flatten(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    start = m.start_dim % x.ndim if x.ndim else 0
    end = m.end_dim % x.ndim if x.ndim else 0
    if start == 1 and end == x.ndim - 1:
        return g.node("Flatten", [name], prefix, axis=1)
    # 0 copies a leading dim (so the batch stays free); the trailing dims are fixed.
    return _reshape(g, prefix, name, [0] * start + [-1] + list(x.shape[end + 1 :]))


def _unflatten(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    dim = m.dim % x.ndim
    sizes = list(y.shape[dim : dim + len(m.unflattened_size)])
    return _reshape(g, prefix, name, [0] * dim + sizes + list(x.shape[dim + 1 :]))


def _identity(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    return g.node("Identity", [name], prefix)


# ---------------------------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------------------------


def _simple(op: str, **fixed: Any) -> Callable:
    def emit(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
        return g.node(op, [name], prefix, **fixed)

    return emit


def _attr(op: str, **mapping: str) -> Callable:
    def emit(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
        return g.node(op, [name], prefix, **{k: float(getattr(m, v)) for k, v in mapping.items()})

    return emit


def _prelu(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    slope = m.weight.data
    if slope.size > 1 and x.ndim > 2:
        slope = slope.reshape(slope.size, *(1,) * (x.ndim - 2))  # per channel (dim 1)
    return g.node("PRelu", [name, g.initializer(prefix + "weight", slope)], prefix)


def _softmax_dim(m, x: Tensor) -> int:
    if m.dim is not None:
        return m.dim % x.ndim
    return 0 if x.ndim in (0, 1, 3) else 1  # PyTorch's implicit choice


def _softmax(op: str, negate: bool = False) -> Callable:
    def emit(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
        axis = _softmax_dim(m, x)
        if g.opset < 13 and axis != x.ndim - 1:
            raise _refuse(prefix, m, f"{op} over dim {axis} (not the last) needs opset 13")
        if negate:
            name = g.node("Neg", [name], prefix)
        return g.node(op, [name], prefix, axis=axis)

    return emit


def _hardtanh(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    low = g.scalar(prefix + "min", float(m.min_val))
    high = g.scalar(prefix + "max", float(m.max_val))
    return g.node("Clip", [name, low, high], prefix)


def _celu(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if g.opset < 12:
        raise _refuse(prefix, m, "Celu needs opset 12")
    return g.node("Celu", [name], prefix, alpha=float(m.alpha))


def _gelu(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if g.opset >= 20:
        return g.node("Gelu", [name], prefix, approximate=m.approximate)
    half = g.scalar(prefix + "half", 0.5)
    one = g.scalar(prefix + "one", 1.0)
    if m.approximate == "tanh":
        cube = g.node("Mul", [name, g.node("Mul", [name, name], prefix)], prefix)
        inner = g.node("Mul", [cube, g.scalar(prefix + "c", 0.044715)], prefix)
        inner = g.node("Add", [name, inner], prefix)
        inner = g.node("Mul", [inner, g.scalar(prefix + "k", math.sqrt(2 / math.pi))], prefix)
        core = g.node("Tanh", [inner], prefix)
    else:
        core = g.node(
            "Erf", [g.node("Div", [name, g.scalar(prefix + "r", math.sqrt(2))], prefix)], prefix
        )
    out = g.node("Mul", [name, g.node("Add", [core, one], prefix)], prefix)
    return g.node("Mul", [out, half], prefix)


def _softplus(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    beta = float(m.beta)
    if float(m.threshold) < 15.0:
        # Beyond the threshold PyTorch returns x; log(1 + exp(x)) differs from x by exp(-x),
        # below float32 resolution only from about 15 on.
        raise _refuse(prefix, m, f"threshold={m.threshold} < 15 has no ONNX equivalent")
    if beta == 1.0:
        return g.node("Softplus", [name], prefix)
    scaled = g.node("Mul", [name, g.scalar(prefix + "beta", beta)], prefix)
    soft = g.node("Softplus", [scaled], prefix)
    return g.node("Div", [soft, g.scalar(prefix + "beta", beta)], prefix)


def _silu(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    return g.node("Mul", [name, g.node("Sigmoid", [name], prefix)], prefix)


def _mish(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    soft = g.node("Tanh", [g.node("Softplus", [name], prefix)], prefix)
    return g.node("Mul", [name, soft], prefix)


def _hardswish(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    if g.opset >= 14:
        return g.node("HardSwish", [name], prefix)
    gate = g.node("HardSigmoid", [name], prefix, alpha=1 / 6, beta=0.5)
    return g.node("Mul", [name, gate], prefix)


# ---------------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------------


def _upsample(g: _Graph, m, prefix: str, name: str, x: Tensor, y: Tensor) -> str:
    n = x.ndim - 2
    align = bool(m.align_corners)
    if m.mode == "nearest":
        attrs = {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        }
    elif m.mode == "nearest-exact":
        attrs = {
            "mode": "nearest",
            "coordinate_transformation_mode": "half_pixel",
            "nearest_mode": "round_prefer_ceil",
        }
    elif m.mode in ("linear", "bilinear", "trilinear", "bicubic"):
        attrs = {
            "mode": "cubic" if m.mode == "bicubic" else "linear",
            "coordinate_transformation_mode": "align_corners" if align else "half_pixel",
        }
        if m.mode == "bicubic":
            attrs["cubic_coeff_a"] = -0.75
    else:
        raise _refuse(prefix, m, f"mode={m.mode!r} has no ONNX Resize equivalent")
    if m.scale_factor is not None and not getattr(m, "recompute_scale_factor", None):
        factor = m.scale_factor
        scales = tuple(factor) if isinstance(factor, tuple) else (float(factor),) * n
        scales = g.initializer(prefix + "scales", np.array([1, 1, *scales], np.float32))
        return g.node("Resize", [name, "", scales], prefix, **attrs)
    # Sizes: the batch and channels of the input at run time, the spatial sizes fixed.
    lead = g.node(
        "Slice",
        [
            g.node("Shape", [name], prefix),
            g.ints(prefix + "start", [0]),
            g.ints(prefix + "end", [2]),
        ],
        prefix,
    )
    sizes = g.node("Concat", [lead, g.ints(prefix + "sizes", list(y.shape[2:]))], prefix, axis=0)
    return g.node("Resize", [name, "", "", sizes], prefix, **attrs)


# ---------------------------------------------------------------------------------------------
# The table and the walk
# ---------------------------------------------------------------------------------------------

EXPORTERS: dict[type, Callable] = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.Conv3d: _conv,
    nn.ConvTranspose1d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.ConvTranspose3d: _conv,
    nn.MaxPool1d: _max_pool,
    nn.MaxPool2d: _max_pool,
    nn.MaxPool3d: _max_pool,
    nn.AvgPool1d: _avg_pool,
    nn.AvgPool2d: _avg_pool,
    nn.AvgPool3d: _avg_pool,
    nn.LPPool1d: _lp_pool,
    nn.LPPool2d: _lp_pool,
    nn.LPPool3d: _lp_pool,
    nn.AdaptiveAvgPool1d: _adaptive_pool("AveragePool", "GlobalAveragePool"),
    nn.AdaptiveAvgPool2d: _adaptive_pool("AveragePool", "GlobalAveragePool"),
    nn.AdaptiveAvgPool3d: _adaptive_pool("AveragePool", "GlobalAveragePool"),
    nn.AdaptiveMaxPool1d: _adaptive_pool("MaxPool", "GlobalMaxPool"),
    nn.AdaptiveMaxPool2d: _adaptive_pool("MaxPool", "GlobalMaxPool"),
    nn.AdaptiveMaxPool3d: _adaptive_pool("MaxPool", "GlobalMaxPool"),
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.BatchNorm3d: _batch_norm,
    nn.LayerNorm: _layer_norm,
    nn.Linear: _linear,
    nn.Flatten: _flatten,
    nn.Unflatten: _unflatten,
    nn.Identity: _identity,
    nn.Dropout: _identity,
    nn.Dropout1d: _identity,
    nn.Dropout2d: _identity,
    nn.Dropout3d: _identity,
    nn.AlphaDropout: _identity,
    nn.FeatureAlphaDropout: _identity,
    nn.ReLU: _simple("Relu"),
    nn.Sigmoid: _simple("Sigmoid"),
    nn.Tanh: _simple("Tanh"),
    nn.LeakyReLU: _attr("LeakyRelu", alpha="negative_slope"),
    nn.PReLU: _prelu,
    nn.ELU: _attr("Elu", alpha="alpha"),
    nn.CELU: _celu,
    nn.SELU: _simple("Selu", alpha=_SELU_ALPHA, gamma=_SELU_GAMMA),
    nn.GELU: _gelu,
    nn.Hardtanh: _hardtanh,
    nn.Softplus: _softplus,
    nn.SiLU: _silu,
    nn.Mish: _mish,
    nn.Hardsigmoid: _simple("HardSigmoid", alpha=1 / 6, beta=0.5),
    nn.Hardswish: _hardswish,
    nn.Softmax: _softmax("Softmax"),
    nn.LogSoftmax: _softmax("LogSoftmax"),
    nn.Softmin: _softmax("Softmax", negate=True),
    nn.Upsample: _upsample,
}


def _exporter(module: nn.Module) -> Callable | None:
    for cls in type(module).__mro__:
        if cls in EXPORTERS:
            return EXPORTERS[cls]
    return None


def _walk(g: _Graph, module: nn.Module, prefix: str, name: str, x: Tensor) -> tuple[str, Tensor]:
    if isinstance(module, nn.Sequential):
        for child_name, child in module.named_children():
            name, x = _walk(g, child, f"{prefix}{child_name}.", name, x)
        return name, x
    emit = _exporter(module)
    if emit is None:
        kind = (
            "a custom module (its forward cannot be read)"
            if module._modules
            else ("a layer the exporter does not know")
        )
        raise _refuse(
            prefix,
            module,
            f"{kind}; export supports Sequential containers of: "
            + ", ".join(sorted({cls.__name__ for cls in EXPORTERS})),
        )
    y = module(x)
    if not isinstance(y, Tensor):
        raise _refuse(prefix, module, "its output is not a single Tensor")
    return emit(g, module, prefix, name, x, y), y


def export(
    model: nn.Module,
    example_input: Any,
    path: str | os.PathLike,
    opset: int = 17,
    *,
    input_name: str = "input",
    output_name: str = "output",
    dynamic_batch: bool = True,
) -> None:
    """Write ``model`` as an ONNX file that onnxruntime runs with the same outputs.

    Args:
        model: a ``Sequential`` (any nesting) of convlab layers, or one layer (the zoo models
            qualify). Exported in eval mode (dropout off, batch-norm running statistics); the
            model's training flag is restored afterwards.
        example_input: a batched input ``(N, C, *spatial)`` (Tensor or array): it runs through
            the model so that every layer's shapes are known.
        path: the ``.onnx`` file, written atomically.
        opset: the ONNX operator set, 11 to the installed onnx's newest (17 by default).
        input_name, output_name: the graph's value names.
        dynamic_batch: leave dim 0 of the input and output free (``"N"``).
    Raises:
        OnnxError: a layer or setting ONNX cannot express (named, with its path).
        ImportError: the ``onnx`` package is missing (``pip install 'convlab[onnx]'``).

    >>> export(convlab.models.lenet5(), cl.randn(1, 1, 28, 28), "lenet.onnx")
    """
    onnx = require_onnx()
    from convlab.io.safetensors import atomic_write_bytes

    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not 11 <= opset <= newest:
        raise ValueError(f"opset must be an int from 11 to {newest}, but got opset={opset!r}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a convlab nn.Module, but got {type(model).__name__}")
    x = example_input if isinstance(example_input, Tensor) else Tensor(np.asarray(example_input))
    if x.dtype.kind != "f" or x.ndim < 2:
        raise ValueError(
            f"example_input must be a batched float array (N, C, ...), but got shape "
            f"{list(x.shape)} and dtype {x.dtype}"
        )
    g = _Graph(onnx, opset, x.dtype)
    g.names.add(input_name)
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out, y = _walk(g, model, "", input_name, x.detach())
    finally:
        model.train(was_training)
    if out == input_name:  # nothing emitted (an empty Sequential)
        out = g.node("Identity", [out], "")
    g.nodes[-1].output[0] = output_name  # the last node computes the output
    helper = onnx.helper
    elem = helper.np_dtype_to_tensor_dtype(x.dtype)
    out_elem = helper.np_dtype_to_tensor_dtype(y.dtype)

    def dims(shape):
        return ["N", *shape[1:]] if dynamic_batch else list(shape)

    graph = helper.make_graph(
        g.nodes,
        "convlab",
        [helper.make_tensor_value_info(input_name, elem, dims(x.shape))],
        [helper.make_tensor_value_info(output_name, out_elem, dims(y.shape))],
        g.initializers,
    )
    import convlab

    opsets = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="convlab",
        producer_version=convlab.__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise OnnxError(f"the exported graph does not pass onnx.checker: {error}") from None
    atomic_write_bytes(path, proto.SerializeToString())
