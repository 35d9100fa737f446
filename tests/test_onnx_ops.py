"""Each ONNX operator convlab imports, against onnxruntime, on several attribute combinations.

Every case is a one-node graph built with ``onnx.helper``; its inputs are graph inputs or
initializers, drawn with a fixed seed. convlab's output must match onnxruntime's within
rtol = atol = 1e-5 in float32 (fixed before running anything); integer outputs exactly.
Gradients through the imported graph are checked against finite differences in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed: pip install 'convlab[onnx]'")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime not installed: pip install onnxruntime"
)

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convlab as cl  # noqa: E402
from convlab.onnx import OPERATORS, OnnxError, load  # noqa: E402

RTOL = ATOL = 1e-5
_rng = np.random.default_rng(20240607)


def rand(*shape, positive=False, dtype=np.float32):
    a = _rng.standard_normal(shape)
    return (np.abs(a) + 0.1 if positive else a).astype(dtype)


def ints(*values):
    return np.array(values, np.int64)


def floats(*values):
    return np.array(values, np.float32)


class I:  # noqa: E742 - a graph input, fed at run time
    def __init__(self, array):
        self.array = array


class W:  # an initializer
    def __init__(self, array):
        self.array = array


def graph(op, inputs, attrs=None, opset=17, outputs=1, dtype=None):
    """A one-node model: ``inputs`` are I(array), W(array) or None (absent)."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for i, item in enumerate(inputs):
        if item is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        array = item.array
        if isinstance(item, W):
            inits.append(numpy_helper.from_array(array, name))
        else:
            elem = helper.np_dtype_to_tensor_dtype(array.dtype)
            graph_inputs.append(helper.make_tensor_value_info(name, elem, array.shape))
            feeds[name] = array
    outs = [f"out{i}" for i in range(outputs)]
    node = helper.make_node(op, names, outs, name=f"the_{op.lower()}", **(attrs or {}))
    g = helper.make_graph(
        [node], "case", graph_inputs, [helper.make_empty_tensor_value_info(o) for o in outs], inits
    )
    return typed(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])), feeds


def typed(model):
    """Output types from ONNX shape inference (the checker wants them), an IR onnxruntime reads."""
    opset = model.opset_import[0].version
    model.ir_version = min(model.ir_version, 8 if opset <= 17 else 9 if opset <= 19 else 10)
    inferred = onnx.shape_inference.infer_shapes(model)
    for out, info in zip(model.graph.output, inferred.graph.output):
        out.type.CopyFrom(info.type)
    return model


def case(op, inputs, attrs=None, opset=17, outputs=1, id=None):
    label = id or ",".join(f"{k}={v}" for k, v in (attrs or {}).items()) or "default"
    return pytest.param(op, inputs, attrs or {}, opset, outputs, id=f"{op}-{label}-op{opset}")


def run_both(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    ours = load(model.SerializeToString())
    with cl.no_grad():
        got = ours(*feeds.values())
    got = got if isinstance(got, tuple) else (got,)
    return expected, [g.numpy() for g in got]


def assert_matches(expected, got):
    assert len(expected) == len(got)
    for e, g in zip(expected, got):
        assert g.shape == e.shape, (g.shape, e.shape)
        if e.dtype.kind == "f":
            assert g.dtype == e.dtype
            np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
        else:
            np.testing.assert_array_equal(g, e)


x4 = rand(2, 4, 7, 8)
x4b = rand(1, 3, 9, 9)
x3 = rand(2, 3, 11)
x5 = rand(1, 2, 5, 6, 7)

CASES = [
    # ---- Conv
    case("Conv", [I(x4), W(rand(6, 4, 3, 3)), W(rand(6))]),
    case("Conv", [I(x4), W(rand(6, 4, 3, 3))], {"pads": [1, 1, 1, 1]}, id="nobias-pads"),
    case("Conv", [I(x4), W(rand(5, 4, 3, 2)), W(rand(5))], {"pads": [0, 1, 2, 0]}),
    case(
        "Conv", [I(x4), W(rand(6, 4, 3, 3)), W(rand(6))], {"strides": [2, 1], "dilations": [2, 1]}
    ),
    case("Conv", [I(x4), W(rand(6, 2, 3, 3)), W(rand(6))], {"group": 2, "pads": [1, 0, 1, 2]}),
    case("Conv", [I(x4), W(rand(4, 1, 3, 3))], {"group": 4, "kernel_shape": [3, 3]}),
    case("Conv", [I(x4), W(rand(3, 4, 4, 4))], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    case("Conv", [I(x4), W(rand(3, 4, 4, 2))], {"auto_pad": "SAME_LOWER"}),
    case("Conv", [I(x4), W(rand(3, 4, 3, 3))], {"auto_pad": "VALID", "strides": [2, 3]}),
    case("Conv", [I(x3), W(rand(4, 3, 3)), W(rand(4))], {"pads": [2, 1], "strides": [2]}),
    case("Conv", [I(x5), W(rand(3, 2, 2, 3, 2)), W(rand(3))], {"pads": [0, 1, 1, 1, 0, 0]}),
    case("Conv", [I(x4), I(rand(6, 4, 3, 3)), I(rand(6))], {"dilations": [1, 2]}, opset=11),
    # ---- ConvTranspose
    case("ConvTranspose", [I(x4), W(rand(4, 3, 3, 3)), W(rand(3))], {"strides": [2, 2]}),
    case("ConvTranspose", [I(x4), W(rand(4, 3, 3, 3))], {"strides": [2, 1], "pads": [1, 0, 0, 2]}),
    case(
        "ConvTranspose",
        [I(x4), W(rand(4, 2, 3, 3)), W(rand(2))],
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 0]},
    ),
    case(
        "ConvTranspose", [I(x4), W(rand(4, 2, 3, 3))], {"strides": [2, 2], "output_shape": [14, 18]}
    ),
    case(
        "ConvTranspose",
        [I(x4), W(rand(4, 2, 3, 3)), W(rand(2))],
        {"strides": [2, 2], "output_shape": [14, 15], "auto_pad": "SAME_UPPER"},
    ),
    case(
        "ConvTranspose",
        [I(x4), W(rand(4, 2, 3, 3))],
        {"strides": [2, 2], "output_shape": [13, 15], "auto_pad": "SAME_LOWER"},
    ),
    case(
        "ConvTranspose", [I(x4), W(rand(4, 2, 4, 3))], {"strides": [2, 3], "auto_pad": "SAME_UPPER"}
    ),
    case(
        "ConvTranspose", [I(x4), W(rand(4, 2, 4, 3))], {"strides": [2, 3], "auto_pad": "SAME_LOWER"}
    ),
    case(
        "ConvTranspose", [I(x4), W(rand(4, 2, 3, 3)), W(rand(4))], {"group": 2, "dilations": [2, 1]}
    ),
    case("ConvTranspose", [I(x3), W(rand(3, 2, 4)), W(rand(2))], {"strides": [3], "pads": [1, 2]}),
    case("ConvTranspose", [I(x5), W(rand(2, 2, 2, 2, 3))], {"strides": [1, 2, 2]}),
    # ---- MaxPool
    case("MaxPool", [I(x4)], {"kernel_shape": [2, 2], "strides": [2, 2]}),
    case("MaxPool", [I(x4)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1]}),
    case(
        "MaxPool",
        [I(x4)],
        {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    ),
    case("MaxPool", [I(x4)], {"kernel_shape": [2, 3], "dilations": [2, 2], "strides": [1, 2]}),
    case("MaxPool", [I(x4)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    case("MaxPool", [I(x4)], {"kernel_shape": [2, 4], "auto_pad": "SAME_LOWER"}),
    case("MaxPool", [I(x4)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    case("MaxPool", [I(x3)], {"kernel_shape": [3], "strides": [2], "ceil_mode": 1}),
    case("MaxPool", [I(x5)], {"kernel_shape": [2, 2, 3], "strides": [1, 2, 2], "pads": [1] * 6}),
    case(
        "MaxPool",
        [I(x4)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 0, 0]},
        outputs=2,
        id="indices",
    ),
    case(
        "MaxPool",
        [I(x4)],
        {"kernel_shape": [2, 2], "storage_order": 1, "strides": [2, 1]},
        outputs=2,
        id="indices-colmajor",
    ),
    case("MaxPool", [I(x4)], {"kernel_shape": [3, 3], "ceil_mode": 1, "strides": [2, 2]}, opset=11),
    # ---- AveragePool
    case("AveragePool", [I(x4)], {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    case(
        "AveragePool",
        [I(x4)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1},
    ),
    case(
        "AveragePool",
        [I(x4)],
        {"kernel_shape": [3, 2], "pads": [2, 0, 0, 1], "count_include_pad": 1},
    ),
    case(
        "AveragePool",
        [I(x4)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 0], "ceil_mode": 1},
    ),
    case(
        "AveragePool",
        [I(x4)],
        {
            "kernel_shape": [3, 3],
            "strides": [2, 3],
            "pads": [1, 1, 1, 1],
            "ceil_mode": 1,
            "count_include_pad": 1,
        },
    ),
    case(
        "AveragePool",
        [I(x4)],
        {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    ),
    case(
        "AveragePool",
        [I(x4)],
        {"kernel_shape": [4, 3], "auto_pad": "SAME_LOWER", "count_include_pad": 1},
    ),
    case(
        "AveragePool",
        [I(x4)],
        {
            "kernel_shape": [2, 2],
            "dilations": [2, 2],
            "pads": [1, 1, 1, 1],
            "ceil_mode": 1,
            "strides": [2, 2],
            "count_include_pad": 1,
        },
        opset=19,
    ),
    case("AveragePool", [I(x4)], {"kernel_shape": [2, 3], "dilations": [3, 1]}, opset=19),
    case("AveragePool", [I(x3)], {"kernel_shape": [4], "strides": [3], "pads": [2, 2]}),
    case("AveragePool", [I(x5)], {"kernel_shape": [2, 3, 3], "pads": [0, 1, 1, 1, 1, 0]}),
    case(
        "AveragePool",
        [I(x4)],
        {"kernel_shape": [2, 2], "ceil_mode": 1, "strides": [3, 3]},
        opset=11,
    ),
    # ---- LpPool
    case("LpPool", [I(x4)], {"kernel_shape": [3, 3], "p": 2}),
    case(
        "LpPool", [I(x4)], {"kernel_shape": [2, 3], "p": 1, "strides": [2, 2], "pads": [1, 1, 0, 1]}
    ),
    case("LpPool", [I(x4)], {"kernel_shape": [3, 2], "p": 3, "pads": [0, 1, 2, 0]}),
    case("LpPool", [I(x4)], {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, opset=18),
    case("LpPool", [I(x4)], {"kernel_shape": [2, 2], "dilations": [2, 1]}, opset=18),
    case("LpPool", [I(x4)], {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    case("LpPool", [I(x3)], {"kernel_shape": [3], "strides": [2]}, opset=11),
    # ---- global pooling
    case("GlobalAveragePool", [I(x4)]),
    case("GlobalAveragePool", [I(x3)], id="1d"),
    case("GlobalAveragePool", [I(x5)], id="3d"),
    case("GlobalMaxPool", [I(x4)]),
    case("GlobalMaxPool", [I(x3)], id="1d"),
    case("GlobalMaxPool", [I(x5)], id="3d"),
    # ---- BatchNormalization
    case(
        "BatchNormalization",
        [I(x4), W(rand(4)), W(rand(4)), W(rand(4)), W(rand(4, positive=True))],
    ),
    case(
        "BatchNormalization",
        [I(rand(5, 3)), W(rand(3)), W(rand(3)), W(rand(3)), W(rand(3, positive=True))],
        {"epsilon": 1e-3},
    ),
    case(
        "BatchNormalization",
        [I(x3), I(rand(3)), I(rand(3)), W(rand(3)), W(rand(3, positive=True))],
        {"momentum": 0.8},
        opset=9,
    ),
    case(
        "BatchNormalization",
        [I(x5), W(rand(2)), W(rand(2)), W(rand(2)), W(rand(2, positive=True))],
        {"training_mode": 0},
        opset=15,
    ),
    # ---- activations
    case("Relu", [I(x4)]),
    case("LeakyRelu", [I(x4)]),
    case("LeakyRelu", [I(x4)], {"alpha": 0.2}),
    case("PRelu", [I(x4), W(rand(4, 1, 1))], id="per-channel"),
    case("PRelu", [I(x4), W(rand(1))], id="shared"),
    case("PRelu", [I(x4), W(rand(8))], id="last-dim"),
    case("PRelu", [I(x3), I(rand(3, 1))], id="input-slope", opset=11),
    case("Sigmoid", [I(x4)]),
    case("Tanh", [I(x4)]),
    case("Clip", [I(x4)], {"min": -0.5, "max": 0.7}, opset=10),
    case("Clip", [I(x4)], {"min": -0.2}, opset=10),
    case("Clip", [I(x4), W(floats(-0.5)), W(floats(0.3))], opset=11, id="both"),
    case("Clip", [I(x4), W(floats(-0.5))], opset=12, id="min"),
    case("Clip", [I(x4), None, W(floats(0.1))], opset=13, id="max"),
    case("Clip", [I(x4)], opset=13, id="none"),
    case("Softmax", [I(x4)], opset=11, id="default-2d-coerced"),
    case("Softmax", [I(x4)], {"axis": 2}, opset=11),
    case("Softmax", [I(x4)], {"axis": -1}, opset=12),
    case("Softmax", [I(x4)], {"axis": 1}, opset=13),
    case("Softmax", [I(x4)], opset=13, id="default-last"),
    case("LogSoftmax", [I(x4)], opset=11, id="default-2d-coerced"),
    case("LogSoftmax", [I(x4)], {"axis": 0}, opset=12),
    case("LogSoftmax", [I(x4)], {"axis": 1}, opset=13),
    case("LogSoftmax", [I(rand(3, 10))], opset=17, id="default-last"),
    case("Elu", [I(x4)], {"alpha": 0.7}),
    case("Celu", [I(x4)], {"alpha": 0.6}),
    case("Selu", [I(x4)]),
    case("Selu", [I(x4)], {"alpha": 1.5, "gamma": 1.2}),
    case("HardSigmoid", [I(x4)]),
    case("HardSigmoid", [I(x4)], {"alpha": 0.3, "beta": 0.4}),
    case("HardSwish", [I(x4 * 4)]),
    case("Softplus", [I(x4 * 5)]),
    case("Gelu", [I(x4)], opset=20),
    case("Gelu", [I(x4)], {"approximate": "tanh"}, opset=20),
    case("Erf", [I(x4)]),
    # ---- Gemm and MatMul
    case("Gemm", [I(rand(3, 5)), W(rand(4, 5)), W(rand(4))], {"transB": 1}),
    case("Gemm", [I(rand(5, 3)), W(rand(5, 4)), W(rand(3, 4))], {"transA": 1}),
    case(
        "Gemm",
        [I(rand(5, 3)), W(rand(4, 5)), W(rand(1, 4))],
        {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0},
    ),
    case("Gemm", [I(rand(3, 5)), I(rand(5, 4))], {"alpha": -1.5}, id="noC"),
    case("Gemm", [I(rand(3, 5)), W(rand(5, 4)), W(floats(0.25))], {"beta": 0.5}, id="scalarC"),
    case("MatMul", [I(rand(3, 5)), W(rand(5, 4))], id="2d"),
    case("MatMul", [I(rand(2, 3, 5)), W(rand(5, 4))], id="3d-2d"),
    case("MatMul", [I(rand(2, 1, 3, 5)), I(rand(3, 5, 2))], id="broadcast"),
    case("MatMul", [I(rand(5)), W(rand(5, 4))], id="1d-2d"),
    case("MatMul", [I(rand(2, 3, 5)), W(rand(5))], id="3d-1d"),
    # ---- element-wise arithmetic
    case("Add", [I(x4), W(rand(4, 1, 1))]),
    case("Add", [I(rand(3, 1)), I(rand(1, 4))], id="both-broadcast"),
    case("Sub", [I(x4), W(rand(8))]),
    case("Sub", [W(floats(1.0)), I(x4)], id="scalar-first"),
    case("Mul", [I(x4), I(rand(2, 1, 7, 1))]),
    case("Div", [I(x4), W(rand(7, 8, positive=True))]),
    case("Add", [I(ints(1, -2, 3)), W(ints(4))], id="int64"),
    case("Mul", [I(ints(1, -2, 3)), W(ints(3, 2, -1))], id="int64"),
    case("Div", [I(ints(7, -7, 6, -9)), W(ints(2, 2, -4, 4))], id="int64-truncates"),
    case("Sum", [I(x4)], id="one"),
    case("Sum", [I(x4), W(rand(8))], id="two"),
    case("Sum", [I(x4), W(rand(4, 1, 1)), I(rand(7, 1))], id="three"),
    case("Max", [I(x4), W(rand(8))]),
    case("Min", [I(x4), W(rand(4, 1, 1)), I(rand(7, 1))]),
    case("Neg", [I(x4)]),
    case("Abs", [I(x4)]),
    case("Exp", [I(x4)]),
    case("Log", [I(rand(3, 4, positive=True))]),
    case("Sqrt", [I(rand(3, 4, positive=True))]),
    case("Reciprocal", [I(rand(3, 4, positive=True))]),
    case("Sign", [I(np.array([-2.0, 0.0, 3.5, -0.0], np.float32))]),
    case("Pow", [I(rand(3, 4, positive=True)), W(floats(2.5))], id="scalar"),
    case("Pow", [I(rand(3, 4, positive=True)), I(rand(4))], id="tensor"),
    # ---- shapes and data movement
    case("Concat", [I(x4), W(rand(2, 3, 7, 8))], {"axis": 1}),
    case("Concat", [I(x4), W(rand(2, 4, 7, 2)), I(rand(2, 4, 7, 1))], {"axis": -1}),
    case("Concat", [W(ints(1, 2)), I(ints(3))], {"axis": 0}, id="int64"),
    case("Flatten", [I(x4)]),
    case("Flatten", [I(x4)], {"axis": 0}),
    case("Flatten", [I(x4)], {"axis": 3}),
    case("Flatten", [I(x4)], {"axis": -2}),
    case("Flatten", [I(x4)], {"axis": 4}),
    case("Reshape", [I(x4), W(ints(0, -1))], id="zero-minus-one"),
    case("Reshape", [I(x4), W(ints(2, 2, 2, 56))]),
    case("Reshape", [I(x4), W(ints(-1, 0, 8))], id="minus-first"),
    case("Reshape", [I(rand(0, 3)), W(ints(3, 0))], {"allowzero": 1}, opset=14),
    case("Transpose", [I(x4)]),
    case("Transpose", [I(x4)], {"perm": [0, 2, 3, 1]}),
    case("Squeeze", [I(rand(2, 1, 3, 1))], opset=11, id="all"),
    case("Squeeze", [I(rand(2, 1, 3, 1))], {"axes": [-1]}, opset=11),
    case("Squeeze", [I(rand(2, 1, 3, 1)), W(ints(1, 3))], opset=13, id="axes-input"),
    case("Unsqueeze", [I(x3)], {"axes": [0, -1]}, opset=11),
    case("Unsqueeze", [I(x3), W(ints(1, 4))], opset=13, id="axes-input"),
    case("Unsqueeze", [I(ints(5)), W(ints(0))], opset=13, id="int64"),
    case("Pad", [I(x4), W(ints(0, 0, 1, 2, 0, 0, 3, 0))], opset=11, id="constant"),
    case("Pad", [I(x4), W(ints(0, 0, 1, 2, 0, 0, 3, 0)), W(floats(1.5))], opset=13, id="value"),
    case("Pad", [I(x4), W(ints(0, 0, 2, 1, 0, 0, 1, 3))], {"mode": "reflect"}, opset=13),
    case("Pad", [I(x4), W(ints(0, 0, 2, 1, 0, 0, 1, 3))], {"mode": "edge"}, opset=13),
    case("Pad", [I(x4), W(ints(0, 0, -1, 2, 0, 0, 3, -2))], opset=11, id="negative"),
    case("Pad", [I(x4), W(ints(0, 1, -2, 0, 0, 1, 2, -1))], {"mode": "reflect"}, id="neg-reflect"),
    case("Pad", [I(x4), W(ints(1, 2, 2, 0)), None, W(ints(-2, 1))], opset=18, id="axes"),
    case("Pad", [I(x4), W(ints(0, 0, 2, 3, 0, 0, 1, 4))], {"mode": "wrap"}, opset=19),
    case("Pad", [I(x4)], {"pads": [0, 0, 1, 2, 0, 0, 2, 1], "value": -1.0}, opset=10),
    case("Pad", [I(ints(1, 2, 3)), W(ints(2, 1))], {"mode": "edge"}, opset=13, id="int64"),
    case("Slice", [I(x4), W(ints(1, -3)), W(ints(5, 100)), W(ints(2, 3))], opset=13),
    case(
        "Slice", [I(x4), W(ints(-1, 6)), W(ints(-100, 0)), W(ints(3, 2)), W(ints(-2, -3))], opset=13
    ),
    case("Slice", [I(x4)], {"starts": [1], "ends": [3], "axes": [1]}, opset=9),
    case("Shape", [I(x4)]),
    case("Shape", [I(x4)], {"start": 1, "end": -1}, opset=15),
    case("Gather", [I(x4), W(ints(3, 0))], {"axis": 1}),
    case("Gather", [I(x4), W(np.array([[0, -1], [2, 1]], np.int64))], {"axis": 2}),
    case("Gather", [I(x4), W(np.array(1, np.int64))], id="scalar-index"),
    case("Gather", [I(ints(5, 6, 7)), W(np.array(-1, np.int64))], id="int64-shape"),
    case("Expand", [I(rand(3, 1)), W(ints(2, 3, 4))]),
    case("Expand", [I(rand(1, 4)), W(ints(3, 1))], id="bidirectional"),
    case("Identity", [I(x4)]),
    case("Dropout", [I(x4)], opset=11),
    case("Dropout", [I(x4), W(np.array(0.3, np.float32))], opset=13, outputs=2, id="mask"),
    case("Cast", [I(x4)], {"to": TensorProto.DOUBLE}),
    case("Cast", [I(x4 * 3)], {"to": TensorProto.INT64}),
    case("Cast", [I(ints(1, 2, 3))], {"to": TensorProto.FLOAT}),
    case("ConstantOfShape", [I(ints(2, 3))]),
    case(
        "ConstantOfShape",
        [W(ints(4))],
        {"value": numpy_helper.from_array(np.array([7], np.int64))},
        id="int64-value",
    ),
    case("ReduceMean", [I(x4)], {"axes": [2, 3]}, opset=13),
    case("ReduceMean", [I(x4), W(ints(-1))], {"keepdims": 0}, opset=18),
    case("ReduceSum", [I(x4), W(ints(1))], opset=13),
    case("ReduceSum", [I(x4)], {"keepdims": 0}, opset=13, id="all"),
    case("ReduceMax", [I(x4)], {"axes": [1, 2]}, opset=13),
    case("LayerNormalization", [I(x4), W(rand(8)), W(rand(8))]),
    case("LayerNormalization", [I(x4), W(rand(7, 8))], {"axis": 2, "epsilon": 1e-3}),
    # ---- LRN
    case("LRN", [I(x4)], {"size": 3}),
    case("LRN", [I(rand(2, 7, 4, 5))], {"size": 5, "alpha": 1e-2, "beta": 0.6, "bias": 2.0}),
    case("LRN", [I(rand(2, 7, 4, 5))], {"size": 7, "alpha": 0.5}),
]


RESIZE_CASES = [
    case("Resize", [I(x4b), W(floats()), W(floats(1, 1, 2, 2))], {"mode": "nearest"}, opset=11),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 1.5, 0.6))],
        {
            "mode": "nearest",
            "coordinate_transformation_mode": "asymmetric",
            "nearest_mode": "floor",
        },
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 1.7, 0.5))],
        {"mode": "nearest", "nearest_mode": "round_prefer_ceil"},
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 2.5, 0.75))],
        {
            "mode": "nearest",
            "coordinate_transformation_mode": "align_corners",
            "nearest_mode": "ceil",
        },
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), W(floats()), W(floats(1, 1, 1.5, 2.0))],
        {"mode": "nearest", "coordinate_transformation_mode": "tf_half_pixel_for_nn"},
        opset=11,
    ),
    case("Resize", [I(x4b), None, W(floats(1, 1, 2, 3))], {"mode": "linear"}, opset=13),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 0.5, 0.7))],
        {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"},
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), None, None, W(ints(1, 3, 5, 14))],
        {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 1.5, 1.5))],
        {"mode": "linear", "coordinate_transformation_mode": "asymmetric"},
        opset=13,
    ),
    case("Resize", [I(x4b), None, W(floats(1, 1, 2, 1.5))], {"mode": "cubic"}, opset=13),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 0.6, 1.3))],
        {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1},
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), None, None, W(ints(1, 3, 4, 12))],
        {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), W(floats(0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2)), None, W(ints(1, 3, 5, 6))],
        {
            "mode": "linear",
            "coordinate_transformation_mode": "tf_crop_and_resize",
            "extrapolation_value": -3.0,
        },
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), W(floats(0, 0, 0.2, 0.1, 1, 1, 0.9, 0.8)), None, W(ints(1, 3, 4, 7))],
        {"mode": "nearest", "coordinate_transformation_mode": "tf_crop_and_resize"},
        opset=13,
    ),
    case(
        "Resize",
        [I(x4b), None, None, W(ints(6, 20))],
        {"mode": "linear", "axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"},
        opset=18,
    ),
    case(
        "Resize",
        [I(x4b), None, None, W(ints(6, 20))],
        {"mode": "nearest", "axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"},
        opset=18,
    ),
    case(
        "Resize",
        [I(x4b), None, W(floats(2.2))],
        {"mode": "linear", "axes": [-1]},
        opset=18,
    ),
    case(
        "Resize",
        [I(x4b), None, W(floats(1, 1, 1.4, 0.6))],
        {"mode": "linear", "coordinate_transformation_mode": "half_pixel_symmetric"},
        opset=19,
    ),
    case("Resize", [I(x3), None, W(floats(1, 1, 2.5))], {"mode": "linear"}, opset=13, id="1d"),
    case(
        "Resize", [I(x5), None, W(floats(1, 1, 2, 1.5, 0.5))], {"mode": "linear"}, opset=13, id="3d"
    ),
    case("Resize", [I(x4b), W(floats(1, 1, 2, 2))], {"mode": "nearest"}, opset=10),
    case("Resize", [I(x4b), W(floats(1, 1, 2, 1.5))], {"mode": "linear"}, opset=10),
    case("Upsample", [I(x4b), W(floats(1, 1, 2, 3))], {"mode": "nearest"}, opset=9),
    case("Upsample", [I(x4b), W(floats(1, 1, 2.5, 1.5))], {"mode": "linear"}, opset=9),
    case("Upsample", [I(x4b)], {"mode": "nearest", "scales": [1.0, 1.0, 3.0, 2.0]}, opset=7),
]


def _random_window_cases(count: int, seed: int):
    """Conv/ConvTranspose/pooling with attributes drawn at random (fixed seed), within what
    onnxruntime accepts: pads smaller than the kernel, no SAME padding with a dilated Conv,
    output_padding below the stride, windows that fit, output_shape at most the natural size
    (larger ones are tested above)."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        op = str(rng.choice(["MaxPool", "AveragePool", "LpPool", "Conv", "ConvTranspose"]))
        nd = int(rng.integers(1, 4))
        spatial = [int(rng.integers(4, 9)) for _ in range(nd)]
        k = [int(rng.integers(1, 5)) for _ in range(nd)]
        s = [int(rng.integers(1, 4)) for _ in range(nd)]
        d = [int(rng.integers(1, 3)) for _ in range(nd)]
        pads = [int(rng.integers(0, kk)) for kk in k] * 2
        pads[nd:] = [int(rng.integers(0, kk)) for kk in k]
        auto = str(rng.choice(["NOTSET"] * 3 + ["SAME_UPPER", "SAME_LOWER", "VALID"]))
        attrs = {"kernel_shape": k, "strides": s, "dilations": d}
        attrs.update({"auto_pad": auto} if auto != "NOTSET" else {"pads": pads})
        eff = [dd * (kk - 1) + 1 for kk, dd in zip(k, d)]
        if auto == "VALID" and any(e > n for e, n in zip(eff, spatial)):
            continue
        if auto == "NOTSET" and any(
            n + a + b < e for n, a, b, e in zip(spatial, pads[:nd], pads[nd:], eff)
        ):
            continue
        x = rand(2, 3, *spatial)
        if op in ("MaxPool", "AveragePool", "LpPool"):
            attrs["ceil_mode"] = int(rng.integers(0, 2))
            if op == "AveragePool":
                attrs["count_include_pad"] = int(rng.integers(0, 2))
            if op == "LpPool":
                attrs["p"] = int(rng.integers(1, 4))
            if auto.startswith("SAME") and any(dd > 1 for dd in d) and op == "MaxPool":
                continue
            inputs = [I(x)]
        else:
            if auto.startswith("SAME") and any(dd > 1 for dd in d):
                continue
            g = int(rng.choice([1, 3]))
            m = g * int(rng.integers(1, 3))
            attrs["group"] = g
            if op == "Conv":
                inputs = [I(x), W(rand(m, 3 // g, *k)), W(rand(m))]
            else:
                adj = [int(rng.integers(0, ss)) for ss in s]
                attrs["output_padding"] = adj
                if rng.random() < 0.4:
                    natural = [(n - 1) * ss + e + a for n, ss, e, a in zip(spatial, s, eff, adj)]
                    attrs["output_shape"] = [
                        int(rng.integers(max(1, v - 3), v + 1)) for v in natural
                    ]
                inputs = [I(x), W(rand(3, m // g, *k)), W(rand(m))]
        cases.append(case(op, inputs, attrs, opset=19, id=f"random{len(cases)}"))
    return cases


WINDOW_CASES = _random_window_cases(120, seed=7)


@pytest.mark.parametrize("op, inputs, attrs, opset, outputs", CASES + RESIZE_CASES + WINDOW_CASES)
def test_operator_matches_onnxruntime(op, inputs, attrs, opset, outputs):
    model, feeds = graph(op, inputs, attrs, opset, outputs)
    expected, got = run_both(model, feeds)
    assert_matches(expected, got)


def test_every_operator_is_tested():
    tested = {p.values[0] for p in CASES + RESIZE_CASES} | {"Constant"}
    assert tested == set(OPERATORS)


@pytest.mark.parametrize(
    "attrs",
    [
        {"value": numpy_helper.from_array(rand(1, 7, 8), "c")},
        {"value_float": 0.5},
        {"value_floats": [0.5, -1.0, 2.0, 0.0, 1.0, 3.0, 4.0, 5.0]},
    ],
    ids=["tensor", "float", "floats"],
)
def test_constant_feeds_a_node(attrs):
    const = helper.make_node("Constant", [], ["c"], name="const", **attrs)
    add = helper.make_node("Add", ["x", "c"], ["y"], name="add")
    g = helper.make_graph(
        [const, add],
        "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x4.shape)],
        [helper.make_empty_tensor_value_info("y")],
    )
    model = typed(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    expected, got = run_both(model, {"x": x4})
    assert_matches(expected, got)


def test_constant_ints_drive_a_reshape():
    const = helper.make_node("Constant", [], ["s"], value_ints=[2, -1])
    node = helper.make_node("Reshape", ["x", "s"], ["y"])
    g = helper.make_graph(
        [const, node],
        "c",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x4.shape)],
        [helper.make_empty_tensor_value_info("y")],
    )
    model = typed(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    expected, got = run_both(model, {"x": x4})
    assert_matches(expected, got)


# ---------------------------------------------------------------------------------------------
# Gradients: the imported graph is differentiable (float64, finite differences)
# ---------------------------------------------------------------------------------------------


def r64(*shape, positive=False):
    return rand(*shape, positive=positive, dtype=np.float64)


GRAD_CASES = [
    case(
        "Conv",
        [I(r64(1, 2, 5, 6)), I(r64(3, 2, 3, 2)), I(r64(3))],
        {"pads": [0, 1, 2, 0], "strides": [2, 1]},
    ),
    case(
        "ConvTranspose",
        [I(r64(1, 2, 3, 4)), I(r64(2, 2, 3, 3)), I(r64(2))],
        {"strides": [2, 2], "output_shape": [6, 9]},
    ),
    case(
        "MaxPool",
        [I(r64(1, 2, 5, 6))],
        {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1},
    ),
    case(
        "AveragePool",
        [I(r64(1, 2, 5, 6))],
        {"kernel_shape": [2, 2], "dilations": [2, 1], "pads": [1, 1, 1, 0]},
        opset=19,
    ),
    case(
        "AveragePool",
        [I(r64(1, 2, 5, 6))],
        {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"},
    ),
    case("LpPool", [I(r64(1, 2, 5, 6, positive=True))], {"kernel_shape": [2, 2], "p": 3}),
    case(
        "BatchNormalization",
        [I(r64(2, 3, 4)), I(r64(3)), I(r64(3)), W(r64(3)), W(r64(3, positive=True))],
    ),
    case("LRN", [I(r64(1, 4, 3, 3))], {"size": 3, "alpha": 0.1}),
    case("PRelu", [I(r64(2, 3, 4)), I(r64(3, 1))]),
    case(
        "Gemm",
        [I(r64(3, 4)), I(r64(5, 3)), I(r64(1, 5))],
        {"transA": 1, "transB": 1, "alpha": 0.7, "beta": 1.5},
    ),
    case("Softmax", [I(r64(2, 3, 4))], {"axis": 1}, opset=11),
    case("Pad", [I(r64(1, 2, 4, 5)), W(ints(0, 0, 2, -1, 0, 0, -1, 3))], {"mode": "reflect"}),
    case(
        "Resize", [I(r64(1, 2, 4, 5)), None, W(floats(1, 1, 1.5, 0.8))], {"mode": "cubic"}, opset=13
    ),
    case(
        "Resize", [I(r64(1, 2, 4, 5)), None, W(floats(1, 1, 2, 1.5))], {"mode": "linear"}, opset=13
    ),
    case("Gather", [I(r64(3, 4)), W(ints(2, 0, 2))], {"axis": 0}),
    case("Slice", [I(r64(3, 6)), W(ints(-1)), W(ints(0)), W(ints(1)), W(ints(-2))], opset=13),
    case("Erf", [I(r64(3, 4))]),
]


@pytest.mark.parametrize("op, inputs, attrs, opset, outputs", GRAD_CASES)
def test_imported_graph_is_differentiable(op, inputs, attrs, opset, outputs):
    model, feeds = graph(op, inputs, attrs, opset, outputs)
    ours = load(model.SerializeToString())
    tensors = [cl.tensor(a, requires_grad=True) for a in feeds.values()]
    assert cl.gradcheck(lambda *ts: ours(*ts), tensors)


def test_weights_are_parameters_and_statistics_are_buffers():
    x = rand(2, 3, 5, 5)
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization",
            ["c", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"],
            ["b"],
        ),
        helper.make_node("Reshape", ["b", "shape"], ["y"]),
    ]
    inits = {
        "conv.weight": rand(4, 3, 3, 3),
        "conv.bias": rand(4),
        "bn.weight": rand(4),
        "bn.bias": rand(4),
        "bn.running_mean": rand(4),
        "bn.running_var": rand(4, positive=True),
        "shape": ints(2, -1),
    }
    g = helper.make_graph(
        nodes,
        "p",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
        [helper.make_empty_tensor_value_info("y")],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = load(typed(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])))
    params = dict(model.named_parameters())
    assert set(params) == {"conv.weight", "conv.bias", "bn.weight", "bn.bias"}
    assert set(model.state_dict()) == set(inits) - {"shape"}
    model(x).sum().backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.shape == p.shape, name
    # Loading new weights through state_dict changes what the graph computes.
    before = model(x).detach().numpy()
    state = model.state_dict()
    state["conv.bias"] = np.asarray(state["conv.bias"]) + 1.0
    model.load_state_dict(state)
    assert not np.allclose(model(x).detach().numpy(), before)


# ---------------------------------------------------------------------------------------------
# Refusals at load time: unsupported operators and attribute values
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, inputs, attrs, opset, fragment",
    [
        (
            "Resize",
            [I(x4b), None, W(floats(1, 1, 0.5, 0.5))],
            {"mode": "linear", "antialias": 1},
            18,
            "antialias",
        ),
        (
            "BatchNormalization",
            [I(x4), W(rand(4)), W(rand(4)), W(rand(4)), W(rand(4, positive=True))],
            {"training_mode": 1},
            15,
            "training_mode",
        ),
        ("Conv", [I(x4), W(rand(3, 4, 3, 3))], {"auto_pad": "SAME_MIDDLE"}, 13, "auto_pad"),
        ("Pad", [I(x4), W(ints(0, 0, 1, 1, 0, 0, 1, 1))], {"mode": "mirror"}, 13, "mode"),
        ("Resize", [I(x4b), None, W(floats(1, 1, 2, 2))], {"mode": "area"}, 13, "mode"),
        ("LRN", [I(x4)], {}, 13, "size"),
    ],
    ids=["antialias", "bn-training", "auto-pad", "pad-mode", "resize-mode", "lrn-no-size"],
)
def test_unsupported_attributes_fail_at_load(op, inputs, attrs, opset, fragment):
    model, _ = graph(op, inputs, attrs, opset)
    with pytest.raises(OnnxError) as info:
        load(model.SerializeToString(), check=False)
    message = str(info.value)
    assert op in message and f"the_{op.lower()}" in message and fragment in message
