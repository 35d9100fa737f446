"""convlab.nn.Module helpers checked against torch.nn.Module's behaviour.

Each test builds the same small model in both libraries (where PyTorch is installed) and
compares what the helper returns or does; the expected values are also written out, so the
tests run without torch.
"""

from __future__ import annotations

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn

try:
    import torch as _torch
except ImportError:  # pragma: no cover - depends on the environment
    _torch = None


def model(lib):
    """Conv -> BatchNorm -> (Linear, Linear) in a nested Sequential, in convlab or torch."""
    return lib.Sequential(
        lib.Conv2d(1, 2, 3),
        lib.BatchNorm2d(2),
        lib.Flatten(),
        lib.Sequential(lib.Linear(8, 4), lib.Dropout(0.5), lib.Linear(4, 3, bias=False)),
    )


TORCH_NN = None if _torch is None else _torch.nn


def copy_from_torch(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


# ---------------------------------------------------------------------------------------------
# Traversal
# ---------------------------------------------------------------------------------------------


def test_named_modules_parameters_buffers_match_torch():
    ours = model(nn)
    names = ["", "0", "1", "2", "3", "3.0", "3.1", "3.2"]
    params = ["0.weight", "0.bias", "1.weight", "1.bias", "3.0.weight", "3.0.bias", "3.2.weight"]
    buffers = ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert [n for n, _ in ours.named_modules()] == names
    assert [n for n, _ in ours.named_parameters()] == params
    assert [n for n, _ in ours.named_buffers()] == buffers
    assert [n for n, _ in ours.named_parameters(prefix="net")] == [f"net.{p}" for p in params]
    assert [n for n, _ in ours.named_parameters(recurse=False)] == []
    assert [n for n, _ in ours[1].named_buffers(recurse=False)] == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    if _torch is not None:
        theirs = model(TORCH_NN)
        assert [n for n, _ in theirs.named_modules()] == names
        assert [n for n, _ in theirs.named_parameters()] == params
        assert [n for n, _ in theirs.named_buffers()] == buffers


def shared(lib):
    layer = lib.Linear(2, 2)
    net = lib.Sequential(layer, layer, lib.Linear(2, 2))
    net[2].weight = net[0].weight  # tied weights
    return net


def test_shared_modules_and_parameters_are_listed_once_unless_asked():
    ours = shared(nn)
    expected = {
        "modules": ["", "0", "2"],
        "modules_all": ["", "0", "1", "2"],
        "params": ["0.weight", "0.bias", "2.bias"],
        "params_all": ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"],
        "state": ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"],
    }

    def observe(net):
        return {
            "modules": [n for n, _ in net.named_modules()],
            "modules_all": [n for n, _ in net.named_modules(remove_duplicate=False)],
            "params": [n for n, _ in net.named_parameters()],
            "params_all": [n for n, _ in net.named_parameters(remove_duplicate=False)],
            "state": list(net.state_dict()),
        }

    assert observe(ours) == expected
    assert ours.num_parameters() == 4 + 2 + 2
    if _torch is not None:
        theirs = shared(TORCH_NN)
        assert observe(theirs) == expected
        assert sum(p.numel() for p in theirs.parameters()) == ours.num_parameters()


def test_shared_buffers_are_listed_once():
    bn = nn.BatchNorm1d(2)
    other = nn.BatchNorm1d(2)
    other.running_mean = bn.running_mean
    net = nn.Sequential(bn, other)
    assert [n for n, _ in net.named_buffers()] == [
        "0.running_mean",
        "0.running_var",
        "0.num_batches_tracked",
        "1.running_var",
        "1.num_batches_tracked",
    ]
    assert len(list(net.named_buffers(remove_duplicate=False))) == 6


def test_apply_visits_children_first_then_self():
    seen = []
    ours = model(nn)
    assert ours.apply(lambda m: seen.append(type(m).__name__)) is ours
    expected = [
        "Conv2d",
        "BatchNorm2d",
        "Flatten",
        "Linear",
        "Dropout",
        "Linear",
        "Sequential",
        "Sequential",
    ]
    assert seen == expected
    if _torch is not None:
        theirs = []
        model(TORCH_NN).apply(lambda m: theirs.append(type(m).__name__))
        assert theirs == expected


def test_apply_for_custom_initialisation():
    net = model(nn)

    def init_linear(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    net.apply(init_linear)
    np.testing.assert_array_equal(net[3][0].weight.data, 0.5)
    np.testing.assert_array_equal(net[3][0].bias.data, 0.0)
    assert not np.all(net[0].weight.data == 0.5)


def test_get_submodule_parameter_buffer():
    net = model(nn)
    assert net.get_submodule("3.2") is net[3][2]
    assert net.get_submodule("") is net
    assert net.get_parameter("3.0.bias") is net[3][0].bias
    assert net.get_buffer("1.running_var") is net[1].running_var
    with pytest.raises(AttributeError, match="has no attribute `9`"):
        net.get_submodule("3.9")
    with pytest.raises(AttributeError, match="has no parameter `bias`"):
        net.get_parameter("3.2.bias")


# ---------------------------------------------------------------------------------------------
# Counting, gradients, freezing
# ---------------------------------------------------------------------------------------------


def test_num_parameters_counts_like_torch():
    ours = model(nn)
    # conv 2*1*3*3 + 2, bn 2 + 2, linear 8*4 + 4, linear 4*3
    assert ours.num_parameters() == 20 + 4 + 36 + 12
    ours[0].requires_grad_(False)
    assert ours.num_parameters(trainable_only=True) == 4 + 36 + 12
    assert ours.num_parameters() == 72
    if _torch is not None:
        theirs = model(TORCH_NN)
        assert sum(p.numel() for p in theirs.parameters()) == 72


def test_zero_grad_to_none_or_to_zeros():
    net = nn.Linear(3, 2)
    net(cl.randn(4, 3)).sum().backward()
    grad = net.weight.grad
    net.zero_grad(set_to_none=False)
    assert net.weight.grad is grad and np.all(grad.data == 0)
    net.zero_grad()
    assert net.weight.grad is None and net.bias.grad is None


def test_requires_grad_freezes_and_returns_self():
    net = model(nn)
    assert net[0].requires_grad_(False) is net[0]
    x = cl.randn(2, 1, 4, 4)
    net(x).sum().backward()
    assert net[0].weight.grad is None and net[0].bias.grad is None
    assert net[3][0].weight.grad is not None
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())


# ---------------------------------------------------------------------------------------------
# Registration rules
# ---------------------------------------------------------------------------------------------


class Holder:
    """A module with one registered parameter, buffer and child, in either library."""

    @staticmethod
    def make(lib, tensor, parameter):
        m = lib.Module()
        m.register_parameter("w", parameter(tensor(np.ones(2, np.float32))))
        m.register_buffer("buf", tensor(np.zeros(2, np.float32)))
        m.add_module("child", lib.Linear(1, 1))
        return m


def _ours():
    return Holder.make(nn, cl.tensor, nn.Parameter)


def _theirs():
    return Holder.make(TORCH_NN, _torch.tensor, _torch.nn.Parameter)


def _buffer(name, value):
    return lambda m, t: m.register_buffer(name, t if value is None else value)


def _param(name, value):
    return lambda m, t: m.register_parameter(name, t if value == "tensor" else value)


def _module(name, value):
    return lambda m, t: m.add_module(name, m.child if value is None else value)


def _assign(name, value):
    return lambda m, t: setattr(m, name, t if value is None else value)


# str() of a KeyError is the repr of its message, with the quote in "can't" escaped: r"can.+t".
REGISTRATION_ERRORS = [
    ("buffer-dot", _buffer("a.b", None), KeyError, r'buffer name can.+t contain "\."'),
    ("buffer-empty", _buffer("", None), KeyError, r'buffer name can.+t be empty string ""'),
    ("buffer-exists", _buffer("w", None), KeyError, r"attribute 'w' already exists"),
    ("buffer-type", _buffer("x", 3), TypeError, r"cannot assign 'int' object to buffer 'x'"),
    ("buffer-name", _buffer(3, None), TypeError, r"buffer name should be a string\. Got int"),
    ("param-dot", _param("a.b", None), KeyError, r'parameter name can.+t contain "\."'),
    ("param-exists", _param("buf", None), KeyError, r"attribute 'buf' already exists"),
    (
        "param-type",
        _param("x", "tensor"),
        TypeError,
        r"object to parameter 'x' \(\w+\.nn\.Parameter or None required\)",
    ),
    ("module-dot", _module("a.b", None), KeyError, r'module name can.+t contain "\.", got: a\.b'),
    ("module-exists", _module("w", None), KeyError, r"attribute 'w' already exists"),
    ("module-type", _module("x", 3), TypeError, r"int is not a Module subclass"),
    ("module-name", _module(3, None), TypeError, r"module name should be a string\. Got int"),
    (
        "assign-tensor-to-param",
        _assign("w", None),
        TypeError,
        r"as parameter 'w' \(\w+\.nn\.Parameter or None expected\)",
    ),
    ("assign-int-to-module", _assign("child", 3), TypeError, r"as child module 'child'"),
    ("assign-int-to-buffer", _assign("buf", 3), TypeError, r"cannot assign 'int' as buffer 'buf'"),
]


@pytest.mark.parametrize(
    "name, action, error, pattern", REGISTRATION_ERRORS, ids=[e[0] for e in REGISTRATION_ERRORS]
)
def test_registration_errors_match_torch(name, action, error, pattern):
    with pytest.raises(error, match=pattern):
        action(_ours(), cl.zeros(1))
    if _torch is not None:
        with pytest.raises(error, match=pattern):
            action(_theirs(), _torch.zeros(1))


def test_assigning_none_keeps_the_slot_registered():
    m = _ours()
    m.w = None
    m.buf = None
    m.child = None
    assert m._parameters == {"w": None} and m._buffers == {"buf": None}
    assert m._modules == {"child": None}
    assert list(m.state_dict()) == [] and list(m.parameters()) == []
    m.w = nn.Parameter(np.ones(3, np.float32))  # a Parameter may take the slot back
    assert list(m.state_dict()) == ["w"]


def test_reassigning_moves_a_name_between_kinds():
    m = _ours()
    m.buf = nn.Parameter(np.ones(1, np.float32))  # a Parameter replaces the buffer
    assert "buf" in m._parameters and "buf" not in m._buffers
    m.plain = 3
    m.plain = nn.Linear(1, 1)  # a Module replaces a plain attribute
    assert "plain" in m._modules and "plain" not in m.__dict__
    del m.plain
    assert "plain" not in m._modules
    with pytest.raises(AttributeError, match="has no attribute 'plain'"):
        m.plain  # noqa: B018


def test_buffers_persistent_and_not():
    m = nn.Linear(2, 3)
    m.register_buffer("scratch", cl.ones(2), persistent=False)
    m.register_buffer("scale", cl.ones(3))
    assert list(m.state_dict()) == ["weight", "bias", "scale"]
    assert [n for n, _ in m.named_buffers()] == ["scratch", "scale"]
    m.register_buffer("scratch", cl.ones(2), persistent=True)  # re-registering makes it saved
    assert list(m.state_dict()) == ["weight", "bias", "scratch", "scale"]
    m.register_buffer("scale", cl.ones(3), persistent=False)
    assert list(m.state_dict()) == ["weight", "bias", "scratch"]
    m.load_state_dict({k: v for k, v in m.state_dict().items()})  # non-persistent: not needed
    if _torch is not None:
        t = _torch.nn.Linear(2, 3)
        t.register_buffer("scratch", _torch.ones(2), persistent=False)
        t.register_buffer("scale", _torch.ones(3))
        t.register_buffer("scratch", _torch.ones(2), persistent=True)
        t.register_buffer("scale", _torch.ones(3), persistent=False)
        assert list(t.state_dict()) == list(m.state_dict())


# ---------------------------------------------------------------------------------------------
# state_dict / load_state_dict with buffers
# ---------------------------------------------------------------------------------------------


def test_state_dict_keys_and_values_match_torch_and_load_its_weights():
    ours = model(nn)
    keys = [
        "0.weight",
        "0.bias",
        "1.weight",
        "1.bias",
        "1.running_mean",
        "1.running_var",
        "1.num_batches_tracked",
        "3.0.weight",
        "3.0.bias",
        "3.2.weight",
    ]
    state = ours.state_dict()
    assert list(state) == keys
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["1.num_batches_tracked"].dtype == np.int64
    state["0.weight"][...] = 7  # a copy: the model is untouched
    assert not np.any(ours[0].weight.data == 7)
    kept = ours.state_dict(keep_vars=True)
    assert kept["0.weight"] is ours[0].weight and kept["1.running_mean"] is ours[1].running_mean
    assert list(ours.state_dict(prefix="net.")) == [f"net.{k}" for k in keys]
    if _torch is None:
        return
    theirs = model(TORCH_NN)
    assert list(theirs.state_dict()) == keys
    # Train torch's batch norm a little so that the running statistics are not the defaults.
    x = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)
    theirs(_torch.tensor(x))
    theirs.eval()
    copy_from_torch(ours, theirs)
    ours.eval()
    assert int(ours[1].num_batches_tracked.item()) == 1
    np.testing.assert_allclose(
        ours(x).data, theirs(_torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6
    )


def test_load_state_dict_reports_like_torch():
    ours = nn.Linear(2, 2)
    result = ours.load_state_dict(ours.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    result = ours.load_state_dict({"weight": np.zeros((2, 2))}, strict=False)
    assert result == (["bias"], [])
    assert repr(result) == "_IncompatibleKeys(missing_keys=['bias'], unexpected_keys=[])"
    np.testing.assert_array_equal(ours.weight.data, 0)
    assert ours.weight.dtype == np.float32  # loading keeps the model's dtype
    bad = {"weight": np.zeros((2, 2)), "bias": np.zeros(3), "c": np.zeros(1)}
    message = (
        r'Error\(s\) in loading state_dict for Linear:\n\tUnexpected key\(s\) in state_dict: "c"\.'
        r" ?\n\tsize mismatch for bias: copying a param with shape (torch\.Size\(\[3\]\)|\(3,\)) "
        r"from checkpoint, the shape in current model is (torch\.Size\(\[2\]\)|\(2,\))\."
    )
    with pytest.raises(RuntimeError, match=message):
        ours.load_state_dict(bad)
    np.testing.assert_array_equal(ours.bias.data, ours.bias.data)  # nothing half-loaded
    if _torch is not None:
        theirs = _torch.nn.Linear(2, 2)
        with pytest.raises(RuntimeError, match=message):
            theirs.load_state_dict({k: _torch.tensor(v) for k, v in bad.items()})
        assert repr(theirs.load_state_dict(theirs.state_dict())) == (
            "<All keys matched successfully>"
        )


def test_load_state_dict_refuses_a_partial_load():
    ours = nn.Linear(2, 2)
    before = ours.weight.data.copy()
    with pytest.raises(RuntimeError, match="size mismatch for bias"):
        ours.load_state_dict({"weight": np.ones((2, 2)), "bias": np.ones(5)}, strict=False)
    np.testing.assert_array_equal(ours.weight.data, before)


# ---------------------------------------------------------------------------------------------
# dtype and mode
# ---------------------------------------------------------------------------------------------


def test_to_float_double_cast_parameters_buffers_and_grads():
    net = model(nn)
    net(cl.randn(2, 1, 4, 4)).sum().backward()
    assert net.double() is net
    for _, p in net.named_parameters():
        assert p.dtype == np.float64 and p.grad.dtype == np.float64
    assert net[1].running_mean.dtype == np.float64
    assert net[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their type
    net.float()
    assert all(p.dtype == np.float32 for p in net.parameters())
    net.to(cl.float64)
    assert net[0].weight.dtype == np.float64
    net.to("cpu", np.float32)
    assert net[0].weight.dtype == np.float32
    net.to(cl.zeros(1, dtype=cl.float64))  # to(tensor): that tensor's dtype
    assert net[0].weight.dtype == np.float64
    net.to(dtype=np.float32, device="cpu")
    assert net[0].weight.dtype == np.float32
    assert net.to("cpu") is net and net.cpu() is net
    with pytest.raises(
        TypeError, match="nn.Module.to only accepts floating point or complex dtypes"
    ):
        net.to(np.int64)
    if _torch is not None:
        with pytest.raises(
            TypeError, match="nn.Module.to only accepts floating point or complex dtypes"
        ):
            _torch.nn.Linear(2, 2).to(_torch.int64)
    with pytest.raises(RuntimeError, match="CPU only"):
        net.to("cuda")


def test_train_and_eval_recurse_and_reject_non_bools():
    net = model(nn)
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net[3].train(False)
    assert net.training and not net[3][1].training
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="training mode is expected to be boolean"):
            net.train(bad)
        if _torch is not None:
            with pytest.raises(ValueError, match="training mode is expected to be boolean"):
                _torch.nn.Linear(1, 1).train(bad)


def test_train_calls_an_overridden_train_of_a_child():
    calls = []

    class Frozen(nn.Linear):
        def train(self, mode=True):
            calls.append(mode)
            return super().train(False)  # always stays in eval mode

    net = nn.Sequential(Frozen(2, 2), nn.Dropout())
    net.train()
    assert calls == [True] and not net[0].training and net[1].training


# ---------------------------------------------------------------------------------------------
# Forward hooks
# ---------------------------------------------------------------------------------------------


def test_forward_hooks_see_and_may_replace_inputs_and_outputs():
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    seen = {}
    handle = net[0].register_forward_hook(lambda m, args, out: seen.update(out=out.shape))
    pre = net[1].register_forward_pre_hook(lambda m, args: args[0] * 0)
    y = net(cl.randn(5, 3))
    assert seen == {"out": (5, 4)}
    np.testing.assert_allclose(y.data, np.broadcast_to(net[1].bias.data, (5, 2)))
    pre.remove()
    handle.remove()
    seen.clear()
    net(cl.randn(5, 3))
    assert seen == {}
    with net.register_forward_hook(lambda m, args, out: out + 1) as h:
        assert isinstance(h, nn.module.RemovableHandle)
        x = cl.randn(2, 3)
        np.testing.assert_allclose(net(x).data, net[1](net[0](x)).data + 1, rtol=1e-6)
    assert not net._forward_hooks


def test_deepcopy_gives_an_independent_model_with_the_same_state():
    import copy

    net = model(nn)
    net(cl.randn(4, 1, 4, 4))  # move the batch-norm statistics
    twin = copy.deepcopy(net)
    for (key, a), b in zip(net.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    twin[0].weight.data[...] = 0
    twin[1].running_mean.data[...] = 5
    assert not np.any(net[0].weight.data == 0) and not np.any(net[1].running_mean.data == 5)
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in net.named_parameters()]
