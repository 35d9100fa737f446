"""convlab.nn: Module bookkeeping and the convolution layers' arguments, checks and init."""

import math

import numpy as np
import pytest

import convlab as cl
import convlab.nn as nn


def test_parameters_state_dict_and_strict_loading():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 1, bias=False))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight"]
    assert model.num_parameters() == 4 * 9 + 4 + 2 * 4
    state = model.state_dict()
    assert list(state) == names
    other = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 2, 1, bias=False))
    other.load_state_dict(state)
    np.testing.assert_array_equal(other[0].weight.detach().numpy(), state["0.weight"])
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "1.weight"'):
        other.load_state_dict({k: v for k, v in state.items() if k != "1.weight"})
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra"'):
        other.load_state_dict({**state, "extra": np.zeros(1)})
    with pytest.raises(
        RuntimeError,
        match=r"size mismatch for 0.bias: copying a param with "
        r"shape \(5,\) from checkpoint",
    ):
        other.load_state_dict({**state, "0.bias": np.zeros(5)})
    # A failed load changes nothing.
    np.testing.assert_array_equal(other[0].bias.detach().numpy(), state["0.bias"])
    missing, unexpected = other.load_state_dict({"extra": np.zeros(1)}, strict=False)
    assert missing == names and unexpected == ["extra"]


def test_train_eval_return_the_module_and_propagate():
    model = nn.Sequential(nn.Conv1d(1, 1, 1), nn.Sequential(nn.Conv1d(1, 1, 1)))
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    assert model.train() is model and all(m.training for m in model.modules())


def test_repr_reads_like_torch():
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ConvTranspose2d(6, 1, 3, stride=2, output_padding=1)
    )
    text = repr(model)
    assert "(0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))" in text
    assert (
        "(1): ConvTranspose2d(6, 1, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))"
    ) in text


@pytest.mark.parametrize(
    "cls,args,fan_in",
    [
        (nn.Conv2d, (6, 16, 5), 6 * 25),
        (nn.Conv1d, (4, 8, 3, 1, 0, 1, 2), 2 * 3),
        (nn.Conv3d, (2, 4, (1, 2, 3)), 2 * 6),
        (nn.ConvTranspose2d, (16, 6, 4), 6 * 16),
        (nn.ConvTranspose1d, (4, 8, 3, 1, 0, 0, 2), 4 * 3),  # weight.size(1) = out / groups
    ],
)
def test_default_init_is_uniform_with_torch_fan_in(cls, args, fan_in):
    cl.manual_seed(0)
    layer = cls(*args)
    bound = 1 / math.sqrt(fan_in)
    for param in (layer.weight, layer.bias):
        values = param.detach().numpy()
        assert np.abs(values).max() <= bound
        if values.size > 100:  # a sample that large reaches near the bound and is centred
            assert np.abs(values).max() > 0.9 * bound
            assert abs(values.mean()) < 0.2 * bound


def test_seeded_init_is_reproducible():
    cl.manual_seed(7)
    a = nn.Conv2d(3, 4, 3).weight.detach().numpy()
    cl.manual_seed(7)
    np.testing.assert_array_equal(a, nn.Conv2d(3, 4, 3).weight.detach().numpy())


def test_padding_modes_run_through_pad():
    x = cl.tensor(np.arange(4.0).reshape(1, 1, 4))
    conv = nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular", bias=False).double()
    conv.weight.data[...] = [[[1.0, 0.0, 0.0]]]  # copies the left neighbour
    np.testing.assert_array_equal(conv(x).detach().numpy(), [[[3.0, 0.0, 1.0, 2.0]]])


def test_conv_transpose_output_size():
    layer = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1)
    x = cl.randn(1, 2, 3, 3)
    assert layer(x).shape == (1, 3, 5, 5)
    assert layer(x, output_size=(6, 6)).shape == (1, 3, 6, 6)
    assert layer(x, output_size=[1, 3, 6, 5]).shape == (1, 3, 6, 5)
    with pytest.raises(
        ValueError,
        match=r"requested an output size of \[7, 7\], but valid "
        r"sizes range from \[5, 5\] to \[6, 6\] "
        r"\(for an input of \[3, 3\]\)",
    ):
        layer(x, output_size=(7, 7))
    with pytest.raises(
        ValueError,
        match=r"ConvTranspose2D: for 4D input, output_size must "
        r"have 2 or 4 elements \(got 1\)",
    ):
        layer(x, output_size=(6,))


CONSTRUCTOR_ERRORS = [
    (
        lambda: nn.Conv2d(3, 4, 3, padding="same", stride=2),
        ValueError,
        "padding='same' is not supported for strided convolutions",
    ),
    (
        lambda: nn.Conv2d(3, 4, 3, padding="full"),
        ValueError,
        r"Invalid padding string 'full', should be one of \{'same', 'valid'\}",
    ),
    (lambda: nn.Conv2d(3, 4, 3, groups=0), ValueError, "groups must be a positive integer"),
    (
        lambda: nn.Conv2d(3, 4, 3, groups=2),
        ValueError,
        "in_channels must be divisible by groups, but got in_channels=3 and groups=2",
    ),
    (
        lambda: nn.Conv2d(4, 3, 3, groups=2),
        ValueError,
        "out_channels must be divisible by groups, but got out_channels=3 and groups=2",
    ),
    (
        lambda: nn.Conv2d(3, 4, 3, padding_mode="mirror"),
        ValueError,
        r"padding_mode must be one of \['circular', 'reflect', 'replicate', 'zeros'\], but got "
        r"padding_mode='mirror'",
    ),
    (
        lambda: nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect"),
        ValueError,
        r'Only "zeros" padding mode is supported for ConvTranspose2d',
    ),
    (
        lambda: nn.ConvTranspose2d(3, 4, 3, padding="same"),
        ValueError,
        r"ConvTranspose2d does not accept padding='same'",
    ),
    (
        lambda: nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2),
        RuntimeError,
        "output padding must be smaller than either stride or dilation",
    ),
    (
        lambda: nn.Conv2d(3, 4, 0),
        ValueError,
        r"kernel_size must be positive, but got "
        r"kernel_size=\(0, 0\)",
    ),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "stride must be positive"),
    (
        lambda: nn.Conv2d(3, 4, 3, padding=-1),
        ValueError,
        r"padding must be non-negative, but got padding=\(-1, -1\)",
    ),
    (
        lambda: nn.Conv2d(3, 4, (3, 3, 3)),
        ValueError,
        r"kernel_size must be an int or a tuple of 2 ints, but got \(3, 3, 3\)",
    ),
    (
        lambda: nn.Conv2d(3.0, 4, 3),
        TypeError,
        r"in_channels must be an int, but got "
        r"in_channels=3.0",
    ),
]


@pytest.mark.parametrize("call,error,message", CONSTRUCTOR_ERRORS)
def test_constructor_rejects_bad_arguments(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_reflect_padding_too_large_for_input_is_refused():
    layer = nn.Conv2d(3, 4, 3, padding=2, padding_mode="reflect")
    with pytest.raises(RuntimeError, match=r"padding \(2, 2\) at dimension 3"):
        layer(cl.randn(1, 3, 2, 2))


def test_module_requires_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.conv = nn.Conv1d(1, 1, 1)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Broken()
