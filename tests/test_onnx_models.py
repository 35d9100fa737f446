"""Whole models through ONNX: PyTorch -> ONNX -> convlab, convlab -> ONNX -> onnxruntime, the
``convlab run`` command, and the errors a user meets (unsupported operator, corrupt file).

PyTorch twins of the zoo models get convlab's weights (same ``state_dict`` names), are
exported with ``torch.onnx.export(..., dynamo=False)`` and loaded with ``convlab.onnx.load``;
outputs must agree within 1e-5 (fixed before running anything). Models exported by convlab must
give convlab's own outputs in onnxruntime, within the same tolerance.
"""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx not installed: pip install 'convlab[onnx]'")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime not installed: pip install onnxruntime"
)

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convlab as cl  # noqa: E402
from convlab import nn  # noqa: E402
from convlab.models import zoo  # noqa: E402
from convlab.onnx import OnnxError, export, load  # noqa: E402

TOL = 1e-5
CONVLAB = [sys.executable, "-m", "convlab.cli.main"]


def ort_run(path_or_bytes, x: np.ndarray) -> np.ndarray:
    model = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def convlab_run(model, x: np.ndarray) -> np.ndarray:
    with cl.no_grad():
        return model(x).numpy()


# ---------------------------------------------------------------------------------------------
# PyTorch -> ONNX -> convlab
# ---------------------------------------------------------------------------------------------

ZOO_INPUTS = {
    "lenet5": (3, 1, 28, 28),
    "tinyvgg": (3, 1, 28, 28),
    "cnn1d": (3, 1, 40),
    "autoencoder": (3, 1, 28, 28),
}


def torch_twin(torch, name: str):
    """The zoo model written with torch.nn, layer for layer (so state_dict names match)."""
    tnn = torch.nn
    if name == "lenet5":
        return tnn.Sequential(
            tnn.Conv2d(1, 6, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(2),
            tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
            tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10),
        )  # fmt: skip
    if name == "tinyvgg":
        return tnn.Sequential(
            tnn.Conv2d(1, 10, 3, padding=1), tnn.ReLU(), tnn.Conv2d(10, 10, 3, padding=1),
            tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(10, 10, 3, padding=1), tnn.ReLU(),
            tnn.Conv2d(10, 10, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
            tnn.Linear(490, 10),
        )  # fmt: skip
    if name == "cnn1d":
        return tnn.Sequential(
            tnn.Conv1d(1, 32, 5, stride=2, padding=2), tnn.ReLU(),
            tnn.Conv1d(32, 32, 5, stride=2, padding=2), tnn.ReLU(),
            tnn.Conv1d(32, 32, 5, stride=2, padding=2), tnn.ReLU(), tnn.Flatten(),
            tnn.Linear(160, 10),
        )  # fmt: skip
    return tnn.Sequential(
        tnn.Conv2d(1, 16, 3, stride=2, padding=1), tnn.ReLU(),
        tnn.Conv2d(16, 32, 3, stride=2, padding=1), tnn.ReLU(),
        tnn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), tnn.ReLU(),
        tnn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), tnn.Sigmoid(),
    )  # fmt: skip


def torch_export(torch, module, x, opset=17) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module.eval(),
            (torch.from_numpy(x),),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    return buffer.getvalue()


@pytest.mark.parametrize("name", list(ZOO_INPUTS))
def test_zoo_model_from_torch_matches_torch(torch, name):
    cl.manual_seed(1)
    ours = zoo.build_model(name)
    twin = torch_twin(torch, name)
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in ours.state_dict().items()}
    twin.load_state_dict(state)
    x = np.random.default_rng(2).standard_normal(ZOO_INPUTS[name]).astype(np.float32)
    model = load(torch_export(torch, twin, x[:1]))
    with torch.no_grad():
        expected = twin(torch.from_numpy(x)).numpy()
    got = convlab_run(model, x)  # batch 3 through a graph exported with batch 1
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)
    assert set(model.state_dict()) <= set(ours.state_dict())


def kitchen_sink(torch):
    """A CNN touching the importer's operators the way torch.onnx exports them."""
    tnn = torch.nn

    class ViewFlatten(tnn.Module):  # x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat
        def forward(self, x):
            return x.view(x.size(0), -1)

    class Scale(tnn.Module):  # arithmetic with constants, Clip, Pad, Softmax over channels
        def forward(self, x):
            x = torch.clamp(x * 1.5 - 0.25, min=-2.0, max=3.0)
            x = torch.nn.functional.pad(x, (1, 2, 0, 1), mode="reflect")
            return x + torch.softmax(x, dim=1) / 2

    return tnn.Sequential(
        tnn.Conv2d(3, 8, 3, padding=1, bias=False),
        tnn.BatchNorm2d(8),
        tnn.PReLU(8),
        tnn.MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True),
        tnn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4),
        tnn.LeakyReLU(0.1),
        Scale(),
        tnn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        tnn.Upsample(scale_factor=2, mode="nearest"),
        tnn.ConvTranspose2d(8, 6, 3, stride=2, padding=1, output_padding=1),
        tnn.Tanh(),
        tnn.Upsample(size=(9, 11), mode="bilinear", align_corners=False),
        tnn.LPPool2d(2, 3, stride=2),
        tnn.Dropout(0.3),
        tnn.AdaptiveAvgPool2d(1),
        ViewFlatten(),
        tnn.Linear(6, 16),
        tnn.BatchNorm1d(16),
        tnn.Sigmoid(),
        tnn.Linear(16, 5),
        tnn.LogSoftmax(dim=1),
    )


def one_d_and_three_d(torch):
    tnn = torch.nn
    return [
        (
            tnn.Sequential(
                tnn.Conv1d(2, 4, 3, stride=2, padding=1), tnn.ELU(),
                tnn.MaxPool1d(2, ceil_mode=True), tnn.AvgPool1d(2, padding=1),
                tnn.AdaptiveMaxPool1d(1), tnn.Flatten(), tnn.Linear(4, 3), tnn.Softmax(dim=-1),
            ),
            (2, 2, 17),
        ),
        (
            tnn.Sequential(
                tnn.Conv3d(1, 3, (2, 3, 3), padding=(0, 1, 1)), tnn.ReLU6(),
                tnn.MaxPool3d(2), tnn.ConvTranspose3d(3, 2, 2, stride=2), tnn.Hardsigmoid(),
                tnn.AdaptiveAvgPool3d(1), tnn.Flatten(), tnn.Linear(2, 2),
            ),
            (2, 1, 5, 8, 8),
        ),
    ]  # fmt: skip


def _randomise_batch_norm(torch, module):
    gen = torch.Generator().manual_seed(3)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=gen))
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen))


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_kitchen_sink_from_torch_matches_torch(torch, opset):
    torch.manual_seed(0)
    module = kitchen_sink(torch)
    _randomise_batch_norm(torch, module)
    x = np.random.default_rng(4).standard_normal((2, 3, 20, 18)).astype(np.float32)
    data = torch_export(torch, module, x, opset=opset)
    model = load(data)
    ops = {node.op_type for node in model.nodes}
    assert {"BatchNormalization", "PRelu", "Resize", "Sign", "Gather", "Pad"} <= ops, ops
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(convlab_run(model, x), expected, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ort_run(data, x), expected, rtol=TOL, atol=TOL)


def test_one_and_three_d_models_from_torch_match_torch(torch):
    torch.manual_seed(5)
    rng = np.random.default_rng(6)
    for module, shape in one_d_and_three_d(torch):
        x = rng.standard_normal(shape).astype(np.float32)
        model = load(torch_export(torch, module, x))
        with torch.no_grad():
            expected = module(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(convlab_run(model, x), expected, rtol=TOL, atol=TOL)


def test_imported_model_fine_tunes_like_torch(torch):
    """One SGD step through the imported graph moves the weights as PyTorch's step does."""
    torch.manual_seed(7)
    twin = torch_twin(torch, "lenet5")
    x = np.random.default_rng(8).standard_normal((4, 1, 28, 28)).astype(np.float32)
    target = np.array([1, 3, 5, 7])
    model = load(torch_export(torch, twin, x))
    model.train()
    loss = cl.nn.functional.cross_entropy(model(x), cl.tensor(target))
    loss.backward()
    cl.optim.SGD(model.parameters(), lr=0.1).step()
    twin.train()
    t_loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(target))
    t_loss.backward()
    torch.optim.SGD(twin.parameters(), lr=0.1).step()
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=TOL)
    theirs = twin.state_dict()
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(np.asarray(value), theirs[name].numpy(), rtol=TOL, atol=TOL)


# ---------------------------------------------------------------------------------------------
# convlab -> ONNX -> onnxruntime (and back into convlab)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ZOO_INPUTS))
def test_zoo_model_exported_by_convlab_runs_in_onnxruntime(tmp_path, name):
    cl.manual_seed(9)
    model = zoo.build_model(name)
    x = np.random.default_rng(10).standard_normal(ZOO_INPUTS[name]).astype(np.float32)
    path = tmp_path / f"{name}.onnx"
    export(model, x[:1], path)
    onnx.checker.check_model(str(path), full_check=True)
    expected = convlab_run(model.eval(), x)
    np.testing.assert_allclose(ort_run(path, x), expected, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(convlab_run(load(path), x), expected, rtol=TOL, atol=TOL)
    names = {t.name for t in onnx.load(str(path)).graph.initializer}
    assert names == set(model.state_dict())


def layer_zoo():
    """convlab layers of every exportable kind, with non-default settings."""
    cl.manual_seed(11)
    image = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding="same", padding_mode="reflect"),
        nn.BatchNorm2d(6),
        nn.PReLU(6),
        nn.Conv2d(6, 6, 4, padding="same", dilation=1, groups=3, padding_mode="replicate"),
        nn.SELU(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2),
        nn.GELU(),
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        nn.Hardswish(),
        nn.Upsample(scale_factor=2, mode="nearest"),
        nn.Conv2d(4, 4, 3, stride=2, padding=(0, 1)),
        nn.ELU(0.5),
        nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True),
        nn.LPPool2d(2, 2, stride=1),
        nn.SiLU(),
        nn.Dropout2d(0.5),
        nn.AdaptiveAvgPool2d((3, 4)),
        nn.Softplus(beta=2.0),
        nn.Flatten(),
        nn.Linear(48, 12),
        nn.BatchNorm1d(12),
        nn.Mish(),
        nn.Linear(12, 7),
        nn.Hardtanh(-0.5, 0.5),
        nn.LogSoftmax(dim=1),
    )
    for m in image.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.data[...] = cl.randn(m.num_features).numpy() * 0.3
            m.running_var.data[...] = cl.rand(m.num_features).numpy() + 0.5
    sequence = nn.Sequential(
        nn.Conv1d(2, 4, 5, padding=2, padding_mode="circular"),
        nn.LayerNorm(21),
        nn.LeakyReLU(0.2),
        nn.AvgPool1d(3, stride=2, padding=1),
        nn.Sequential(nn.Conv1d(4, 4, 3), nn.Tanh()),
        nn.Upsample(scale_factor=3, mode="linear"),
        nn.MaxPool1d(2, dilation=2),
        nn.Flatten(1, 2),
        nn.Unflatten(1, (4, -1)),
        nn.AdaptiveMaxPool1d(1),
        nn.Flatten(),
        nn.Sigmoid(),
        nn.Softmax(dim=1),
    )
    volume = nn.Sequential(
        nn.Conv3d(1, 2, 3, padding=1),
        nn.ReLU6(),
        nn.MaxPool3d(2),
        nn.ConvTranspose3d(2, 2, 2, stride=2),
        nn.BatchNorm3d(2),
        nn.AvgPool3d(2),
        nn.Upsample(scale_factor=(1, 2, 2), mode="trilinear"),
        nn.Flatten(),
        nn.Linear(2 * 3 * 8 * 8, 3),
        nn.Softmin(dim=1),
    )
    extras = nn.Sequential(
        nn.Conv2d(2, 4, (3, 1), stride=(1, 2), padding=(1, 0), bias=False),
        nn.CELU(0.7),
        nn.AdaptiveMaxPool2d((4, 2)),
        nn.GELU(approximate="tanh"),
        nn.Hardsigmoid(),
        nn.Hardswish(),
        nn.PReLU(),
        nn.Identity(),
        nn.Softplus(),
        nn.Linear(2, 5),  # on a 4-d input: MatMul and Add
        nn.Flatten(2, 3),
        nn.AdaptiveAvgPool1d(5),
        nn.LPPool1d(4, 2),
        nn.Flatten(),
        nn.Unflatten(1, (2, 4)),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(8, 3, bias=False),
    )
    return [
        (image, (2, 3, 19, 17), 17),
        (sequence, (3, 2, 21), 19),
        (volume, (2, 1, 6, 8, 8), 13),
        (extras, (2, 2, 8, 8), 13),
    ]


@pytest.mark.parametrize("index", [0, 1, 2, 3], ids=["2d", "1d", "3d", "extras"])
def test_layers_exported_by_convlab_run_in_onnxruntime(tmp_path, index):
    model, shape, opset = layer_zoo()[index]
    x = np.random.default_rng(12).standard_normal(shape).astype(np.float32)
    path = tmp_path / "layers.onnx"
    export(model, x, path, opset=opset)
    expected = convlab_run(model.eval(), x)
    np.testing.assert_allclose(ort_run(path, x), expected, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(convlab_run(load(path), x), expected, rtol=TOL, atol=TOL)


def test_export_keeps_the_batch_dimension_free(tmp_path):
    model = zoo.lenet5()
    path = tmp_path / "lenet.onnx"
    export(model, np.zeros((1, 1, 28, 28), np.float32), path, dynamic_batch=True)
    x = np.random.default_rng(13).standard_normal((5, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(ort_run(path, x), convlab_run(model, x), rtol=TOL, atol=TOL)


def test_export_restores_training_mode(tmp_path):
    model = zoo.lenet5()
    model.train()
    export(model, np.zeros((1, 1, 28, 28), np.float32), tmp_path / "m.onnx")
    assert model.training


@pytest.mark.parametrize(
    "model, fragment",
    [
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2, return_indices=True)), "1 (MaxPool2d)"),
        (nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), "divisor_override"),
        (nn.Sequential(nn.Conv2d(1, 2, 3), nn.GroupNorm(1, 2)), "1 (GroupNorm)"),
        (nn.Sequential(nn.LPPool2d(3, 2)), "norm_type=3"),
        (nn.Sequential(nn.Upsample(scale_factor=2, mode="area")), "mode='area'"),
    ],
    ids=["return-indices", "divisor", "unknown-layer", "odd-lp", "area"],
)
def test_export_refuses_what_onnx_cannot_express(tmp_path, model, fragment):
    path = tmp_path / "bad.onnx"
    with pytest.raises(OnnxError, match="cannot export") as info:
        export(model, np.zeros((1, 1, 8, 8), np.float32), path)
    assert fragment in str(info.value)
    assert not path.exists()


def test_export_refuses_a_custom_module(tmp_path):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv(x) + 1

    with pytest.raises(OnnxError, match=r"cannot export 0 \(Block\): a custom module"):
        export(nn.Sequential(Block()), np.zeros((1, 1, 8, 8), np.float32), tmp_path / "b.onnx")


def test_export_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="opset must be an int from 11"):
        export(zoo.lenet5(), np.zeros((1, 1, 28, 28), np.float32), tmp_path / "m.onnx", opset=9)
    with pytest.raises(TypeError, match="nn.Module"):
        export(lambda x: x, np.zeros((1, 1), np.float32), tmp_path / "m.onnx")


# ---------------------------------------------------------------------------------------------
# Errors: unsupported operators, corrupt files, bad inputs, missing extra
# ---------------------------------------------------------------------------------------------


def _two_node_model(second_op: str, domain: str = "") -> onnx.ModelProto:
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="first_relu"),
        helper.make_node(second_op, ["r"], ["y"], name="the_culprit", domain=domain),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(g, opset_imports=opsets, ir_version=8)


def test_unsupported_operator_is_named_with_its_node_at_load():
    with pytest.raises(
        OnnxError, match=r"unsupported ONNX operator: Hardmax \(node 'the_culprit'\)"
    ):
        load(_two_node_model("Hardmax").SerializeToString())


def test_custom_domain_operator_is_refused():
    model = _two_node_model("FancyOp", domain="com.example")
    with pytest.raises(OnnxError, match=r"com\.example\.FancyOp \(node 'the_culprit'\)"):
        load(model.SerializeToString(), check=False)


@pytest.fixture(scope="module")
def lenet_file(tmp_path_factory):
    cl.manual_seed(14)
    model = zoo.lenet5()
    path = tmp_path_factory.mktemp("onnx") / "lenet.onnx"
    export(model, np.zeros((1, 1, 28, 28), np.float32), path)
    return path, model


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.999])
def test_truncated_file_is_refused(tmp_path, lenet_file, cut):
    data = lenet_file[0].read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(OnnxError, match="cut.onnx"):
        load(path)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"", "is empty"),
        (b"\xff\xfe garbage \x00\x13" * 50, "not a valid ONNX model"),
        (b"hello, I am a text file\n", "not"),
    ],
    ids=["empty", "garbage", "text"],
)
def test_corrupt_file_is_refused(tmp_path, content, fragment):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(OnnxError, match=fragment):
        load(path)


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(OnnxError, match="cannot read .*nowhere.onnx"):
        load(tmp_path / "nowhere.onnx")


def test_file_missing_a_weight_is_refused(lenet_file):
    """A file cut at a field boundary parses; the node reading the lost weight is named."""
    model = onnx.load(str(lenet_file[0]))
    lost = model.graph.initializer[-1].name
    del model.graph.initializer[-1]
    with pytest.raises(OnnxError, match=f"reads '{lost}', which is neither a graph input"):
        load(model.SerializeToString())


def test_corrupt_initializer_is_refused():
    model = _two_node_model("Relu")
    weight = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    weight.raw_data = weight.raw_data[:5]  # fewer bytes than the shape needs
    model.graph.initializer.append(weight)
    with pytest.raises(OnnxError):
        load(model.SerializeToString())


def test_input_with_the_wrong_shape_is_named(lenet_file):
    model = load(lenet_file[0])
    with pytest.raises(OnnxError, match=r"input 'input' must have shape \[N, 1, 28, 28\]"):
        model(np.zeros((1, 1, 32, 32), np.float32))


def test_unresolvable_reshape_names_its_node():
    node = helper.make_node("Reshape", ["x", "shape"], ["y"], name="bad_reshape")
    g = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6]),
            helper.make_tensor_value_info("shape", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    proto = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    # The output has no declared shape: onnx.checker objects, onnxruntime and convlab run it.
    with pytest.warns(UserWarning, match="onnx.checker reports"):
        model = load(proto)
    assert model(np.ones((2, 6), np.float32), np.array([3, -1])).shape == (3, 4)
    with pytest.raises(OnnxError, match=r"Reshape node 'bad_reshape': cannot reshape \[2, 6\]"):
        model(np.ones((2, 6), np.float32), np.array([5, -1]))


def test_missing_onnx_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'convlab\[onnx\]'"):
        load(b"anything")


# ---------------------------------------------------------------------------------------------
# convlab run
# ---------------------------------------------------------------------------------------------


def convlab(*args, cwd=None):
    return subprocess.run(
        [*CONVLAB, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_run_command_prints_and_saves_the_output(tmp_path, lenet_file):
    path, model = lenet_file
    x = np.random.default_rng(15).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = convlab("run", path, tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert result.returncode == 0, result.stderr
    expected = ort_run(path, x)
    saved = np.load(tmp_path / "y.npy")
    np.testing.assert_allclose(saved, expected, rtol=TOL, atol=TOL)
    assert "output 'output': shape (2, 10) float32" in result.stdout
    for row in range(2):
        assert f"sample {row}: argmax {int(expected[row].argmax())}" in result.stdout


def test_run_command_adds_the_batch_dimension(tmp_path, lenet_file):
    path, _ = lenet_file
    x = np.random.default_rng(16).standard_normal((1, 28, 28))
    np.save(tmp_path / "one.npy", x)
    result = convlab("run", path, tmp_path / "one.npy")
    assert result.returncode == 0, result.stderr
    expected = ort_run(path, x[None].astype(np.float32))
    assert f"sample 0: argmax {int(expected[0].argmax())}" in result.stdout


def _assert_clean_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_run_command_errors_are_one_line(tmp_path, lenet_file):
    path, _ = lenet_file
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 28, 28), np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((1, 3, 28, 28), np.float32))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(_two_node_model("Hardmax").SerializeToString())
    _assert_clean_error(convlab("run", tmp_path / "none.onnx", tmp_path / "x.npy"), "cannot read")
    _assert_clean_error(convlab("run", bad, tmp_path / "x.npy"), "Hardmax", "the_culprit")
    _assert_clean_error(convlab("run", path, tmp_path / "none.npy"), "no such input file")
    _assert_clean_error(convlab("run", path, tmp_path / "wrong.npy"), "must have shape")
    _assert_clean_error(
        convlab("run", path, tmp_path / "x.npy", tmp_path / "x.npy"), "takes 1 input"
    )
