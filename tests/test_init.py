"""convlab.nn.init: distributions, fans, gains and errors, against the formulas and PyTorch.

Each random initialiser fills a large tensor from a fixed seed; its bounds are checked exactly
and its mean and standard deviation against the formula within five standard errors.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import convlab as cl
from convlab.nn import init

try:
    import torch as _torch
except ImportError:  # pragma: no cover - depends on the environment
    _torch = None

N = 400_000  # elements per distribution test: standard error of the mean = std / 632


def big(dtype=np.float64, shape=(400, 1000)):
    return cl.Tensor(np.full(shape, np.nan, dtype=dtype))


def check_moments(values: np.ndarray, mean: float, std: float) -> None:
    n = values.size
    assert abs(values.mean() - mean) < 5 * std / math.sqrt(n)
    # The sample std has a standard error of about std / sqrt(2n).
    assert abs(values.std() - std) < 5 * std / math.sqrt(2 * n)


# ---------------------------------------------------------------------------------------------
# Gains and fans
# ---------------------------------------------------------------------------------------------

GAINS = [
    ("linear", None, 1.0),
    ("conv1d", None, 1.0),
    ("conv2d", None, 1.0),
    ("conv3d", None, 1.0),
    ("conv_transpose1d", None, 1.0),
    ("conv_transpose2d", None, 1.0),
    ("conv_transpose3d", None, 1.0),
    ("sigmoid", None, 1.0),
    ("tanh", None, 5.0 / 3),
    ("relu", None, math.sqrt(2.0)),
    ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
    ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.2**2))),
    ("leaky_relu", 0, math.sqrt(2.0)),
    ("leaky_relu", math.sqrt(5), math.sqrt(1.0 / 3)),
    ("selu", None, 0.75),
]


@pytest.mark.parametrize("nonlinearity, param, expected", GAINS)
def test_calculate_gain(nonlinearity, param, expected):
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(expected, rel=1e-15)
    if _torch is not None:
        theirs = _torch.nn.init.calculate_gain(nonlinearity, param)
        assert init.calculate_gain(nonlinearity, param) == theirs


@pytest.mark.parametrize(
    "args, pattern",
    [
        (("foo",), r"^Unsupported nonlinearity foo$"),
        (("leaky_relu", "x"), r"^negative_slope x not a valid number$"),
        (("leaky_relu", True), r"^negative_slope True not a valid number$"),
    ],
)
def test_calculate_gain_errors(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        init.calculate_gain(*args)
    if _torch is not None:
        with pytest.raises(ValueError, match=pattern):
            _torch.nn.init.calculate_gain(*args)


FAN_SHAPES = [(3, 4), (5, 3, 2, 2), (4, 2, 3), (2, 3, 1, 1, 1), (0, 3), (6, 0, 2)]


@pytest.mark.parametrize("shape", FAN_SHAPES)
def test_fans(shape):
    receptive = math.prod(shape[2:])
    expected = (shape[1] * receptive, shape[0] * receptive)
    assert init._calculate_fan_in_and_fan_out(cl.zeros(*shape)) == expected
    assert init._calculate_correct_fan(cl.zeros(*shape), "fan_in") == expected[0]
    assert init._calculate_correct_fan(cl.zeros(*shape), "FAN_OUT") == expected[1]
    if _torch is not None:
        assert _torch.nn.init._calculate_fan_in_and_fan_out(_torch.zeros(shape)) == expected


@pytest.mark.parametrize("shape", [(), (5,)])
def test_fans_need_two_dimensions(shape):
    pattern = r"Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
    for fn in (init._calculate_fan_in_and_fan_out, init.xavier_uniform_, init.kaiming_normal_):
        with pytest.raises(ValueError, match=pattern):
            fn(cl.zeros(*shape))
    if _torch is not None:
        with pytest.raises(ValueError, match=pattern):
            _torch.nn.init.xavier_uniform_(_torch.zeros(shape))


def test_bad_mode():
    pattern = re.escape("Mode fan_avg not supported, please use one of ['fan_in', 'fan_out']")
    with pytest.raises(ValueError, match=pattern):
        init.kaiming_uniform_(cl.zeros(3, 4), mode="fan_avg")
    if _torch is not None:
        with pytest.raises(ValueError, match=pattern):
            _torch.nn.init.kaiming_uniform_(_torch.zeros(3, 4), mode="fan_avg")


# ---------------------------------------------------------------------------------------------
# Distributions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a, b", [(0.0, 1.0), (-3.0, 2.0), (1.5, 1.5)])
def test_uniform(a, b):
    cl.manual_seed(0)
    t = init.uniform_(big(), a, b)
    v = t.numpy()
    assert v.min() >= a and v.max() <= b
    if b > a:
        assert v.max() < b  # the range is [a, b)
        check_moments(v, (a + b) / 2, (b - a) / math.sqrt(12))
    else:
        np.testing.assert_array_equal(v, a)


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (2.0, 0.5), (-1.0, 0.0)])
def test_normal(mean, std):
    cl.manual_seed(1)
    v = init.normal_(big(), mean, std).numpy()
    if std == 0:
        np.testing.assert_array_equal(v, mean)
    else:
        check_moments(v, mean, std)


def _truncated_moments(mean, std, a, b):
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    # The mass between alpha and beta, from the tail it lies in (no cancellation).
    if alpha > 0:
        z = 0.5 * (math.erfc(alpha / math.sqrt(2)) - math.erfc(beta / math.sqrt(2)))
    else:
        z = 0.5 * (math.erfc(-beta / math.sqrt(2)) - math.erfc(-alpha / math.sqrt(2)))
    m = mean + std * (pdf(alpha) - pdf(beta)) / z
    var = std**2 * (
        1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2
    )
    return m, math.sqrt(var)


@pytest.mark.parametrize(
    "mean, std, a, b",
    [
        (0.0, 1.0, -2.0, 2.0),
        (0.5, 2.0, -1.0, 3.0),
        (0.0, 1.0, -0.1, 0.1),  # narrow around the mean
        (0.0, 1.0, 5.0, 6.0),  # far in the right tail
        (1.0, 0.5, -20.0, -1.0),  # far in the left tail, wide
    ],
)
@pytest.mark.filterwarnings("ignore:mean is more than 2 std")
def test_trunc_normal(mean, std, a, b):
    cl.manual_seed(2)
    v = init.trunc_normal_(big(), mean, std, a, b).numpy()
    assert v.min() >= a and v.max() <= b
    check_moments(v, *_truncated_moments(mean, std, a, b))


def test_trunc_normal_warns_like_torch_when_the_mean_is_far_from_the_range():
    pattern = r"mean is more than 2 std from \[a, b\]"
    with pytest.warns(UserWarning, match=pattern):
        v = init.trunc_normal_(big(), mean=10.0, std=1.0, a=-1.0, b=1.0).numpy()
    assert v.min() >= -1.0 and v.max() <= 1.0
    check_moments(v, *_truncated_moments(10.0, 1.0, -1.0, 1.0))
    if _torch is not None:
        with pytest.warns(UserWarning, match=pattern):
            _torch.nn.init.trunc_normal_(_torch.zeros(10), mean=10.0, std=1.0, a=-1.0, b=1.0)


def test_constant_zeros_ones_eye():
    t = cl.zeros(3, 4, dtype=cl.float64)
    assert init.constant_(t, 2.5) is t
    np.testing.assert_array_equal(t.numpy(), 2.5)
    np.testing.assert_array_equal(init.zeros_(t).numpy(), 0.0)
    np.testing.assert_array_equal(init.ones_(t).numpy(), 1.0)
    np.testing.assert_array_equal(init.eye_(t).numpy(), np.eye(3, 4))
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        init.eye_(cl.zeros(2, 3, 4))


XAVIER = [((300, 400), 1.0), ((64, 32, 3, 3), 2.0), ((50, 80, 5), init.calculate_gain("tanh"))]


@pytest.mark.parametrize("shape, gain", XAVIER)
def test_xavier_uniform(shape, gain):
    cl.manual_seed(3)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(cl.zeros(*shape))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    v = init.xavier_uniform_(big(shape=shape), gain).numpy()
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.999 * bound
    check_moments(v, 0.0, bound / math.sqrt(3))


@pytest.mark.parametrize("shape, gain", XAVIER)
def test_xavier_normal(shape, gain):
    cl.manual_seed(4)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(cl.zeros(*shape))
    v = init.xavier_normal_(big(shape=shape), gain).numpy()
    check_moments(v, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


KAIMING = [
    ((300, 400), 0.0, "fan_in", "leaky_relu"),
    ((300, 400), math.sqrt(5), "fan_in", "leaky_relu"),
    ((64, 32, 3, 3), 0.0, "fan_out", "relu"),
    ((100, 40, 5), 0.2, "fan_in", "leaky_relu"),
    ((100, 40, 5), 0.0, "FAN_OUT", "tanh"),
]


def _kaiming_std(shape, a, mode, nonlinearity):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(cl.zeros(*shape))
    fan = fan_in if mode.lower() == "fan_in" else fan_out
    return init.calculate_gain(nonlinearity, a) / math.sqrt(fan)


@pytest.mark.parametrize("shape, a, mode, nonlinearity", KAIMING)
def test_kaiming_uniform(shape, a, mode, nonlinearity):
    cl.manual_seed(5)
    std = _kaiming_std(shape, a, mode, nonlinearity)
    bound = math.sqrt(3.0) * std
    v = init.kaiming_uniform_(big(shape=shape), a, mode, nonlinearity).numpy()
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.999 * bound
    check_moments(v, 0.0, std)
    if _torch is not None:  # the same bound as torch's (its fill is bounded by it too)
        theirs = _torch.nn.init.kaiming_uniform_(_torch.empty(shape), a, mode, nonlinearity)
        assert theirs.abs().max().item() <= bound * (1 + 1e-6)
        assert theirs.abs().max().item() > 0.999 * bound


@pytest.mark.parametrize("shape, a, mode, nonlinearity", KAIMING)
def test_kaiming_normal(shape, a, mode, nonlinearity):
    cl.manual_seed(6)
    v = init.kaiming_normal_(big(shape=shape), a, mode, nonlinearity).numpy()
    check_moments(v, 0.0, _kaiming_std(shape, a, mode, nonlinearity))


def test_linear_default_is_uniform_one_over_sqrt_fan_in():
    # kaiming_uniform_(a=sqrt(5)) has bound sqrt(3) * sqrt(2 / 6) / sqrt(fan_in) = 1/sqrt(fan_in).
    cl.manual_seed(7)
    v = init.kaiming_uniform_(big(shape=(500, 800)), a=math.sqrt(5)).numpy()
    assert np.abs(v).max() <= 1 / math.sqrt(800)
    check_moments(v, 0.0, 1 / math.sqrt(800) / math.sqrt(3))


# ---------------------------------------------------------------------------------------------
# Behaviour: in place, dtype, seeding, generators, zero-element tensors, errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fn",
    [
        init.uniform_,
        init.normal_,
        init.trunc_normal_,
        init.xavier_uniform_,
        init.xavier_normal_,
        init.kaiming_uniform_,
        init.kaiming_normal_,
    ],
)
def test_in_place_keeps_dtype_identity_and_follows_the_seed(fn):
    p = cl.nn.Parameter(np.zeros((20, 30), np.float32))
    cl.manual_seed(8)
    out = fn(p)
    assert out is p and p.dtype == np.float32 and p.requires_grad and p.grad_fn is None
    first = p.data.copy()
    cl.manual_seed(8)
    fn(p)
    np.testing.assert_array_equal(p.data, first)
    gen = np.random.default_rng(9)
    a = fn(cl.zeros(20, 30), generator=gen).numpy()
    b = fn(cl.zeros(20, 30), generator=np.random.default_rng(9)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_])
def test_kaiming_on_zero_element_tensors_warns_and_does_nothing(fn):
    t = cl.zeros(0, 3)
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert fn(t) is t


def test_range_and_std_errors_match_torch():
    cases = [
        (lambda m, t: m.uniform_(t, 2, 1), RuntimeError,
         r"uniform_ expects to return a \[from, to\) range, but found from=2 > to=1"),
        (lambda m, t: m.normal_(t, 0, -1), RuntimeError,
         r"normal expects std >= 0\.0, but found std -1"),
    ]  # fmt: skip
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            call(init, cl.zeros(3))
        if _torch is not None:
            with pytest.raises(error, match=pattern):
                call(_torch.nn.init, _torch.zeros(3))


def test_random_fill_of_an_integer_tensor_is_refused():
    with pytest.raises(NotImplementedError, match="not implemented"):
        init.uniform_(cl.zeros(3, dtype=cl.int64))
    np.testing.assert_array_equal(init.ones_(cl.zeros(3, dtype=cl.int64)).numpy(), 1)
