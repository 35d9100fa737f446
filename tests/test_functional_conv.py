"""convlab.nn.functional convolution family: gradients by finite differences, argument rules.

Reference equality of the kernels is in test_kernels.py and parity with PyTorch in
test_conv_torch_parity.py; here the autograd wiring is checked by ``gradcheck`` (float64) for
every differentiable argument, and each error rule by its exception type and message.
"""

import warnings

import numpy as np
import pytest

import convlab as cl
import convlab.nn.functional as F
from convlab.kernels import reference as R


def t64(rng, *shape):
    return cl.tensor(rng.standard_normal(shape), requires_grad=True)


GRAD_CASES = [
    # (function, x shape, w shape, kwargs)
    (F.conv1d, (2, 4, 7), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    (F.conv1d, (3, 5), (4, 3, 2), dict(padding="same")),  # unbatched, even kernel
    (F.conv2d, (2, 2, 5, 6), (3, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0))),
    (F.conv2d, (1, 3, 5, 5), (6, 1, 3, 3), dict(padding=1, groups=3)),  # depthwise x2
    (F.conv2d, (1, 2, 6, 5), (2, 2, 2, 3), dict(padding="same", dilation=(3, 1))),
    (F.conv3d, (1, 2, 4, 4, 3), (2, 1, 2, 3, 2), dict(stride=(1, 2, 1), padding=1, groups=2)),
    (
        F.conv_transpose1d,
        (2, 4, 4),
        (4, 3, 3),
        dict(stride=2, padding=1, output_padding=1, groups=2),
    ),
    (
        F.conv_transpose2d,
        (1, 2, 3, 3),
        (2, 3, 3, 2),
        dict(stride=(2, 3), padding=(1, 0), output_padding=(1, 2)),
    ),
    (
        F.conv_transpose2d,
        (2, 3, 3),
        (2, 2, 2, 2),
        dict(stride=1, dilation=2, output_padding=1),
    ),  # unbatched
    (F.conv_transpose3d, (1, 2, 2, 3, 2), (2, 1, 2, 2, 2), dict(stride=2, groups=2)),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("fn,x_shape,w_shape,kwargs", GRAD_CASES)
def test_gradcheck_input_weight_bias(fn, x_shape, w_shape, kwargs):
    rng = np.random.default_rng(11)
    transposed = "transpose" in fn.__name__
    c_out = w_shape[1] * kwargs.get("groups", 1) if transposed else w_shape[0]
    x, w, b = t64(rng, *x_shape), t64(rng, *w_shape), t64(rng, c_out)
    assert cl.gradcheck(lambda x, w, b: fn(x, w, b, **kwargs), (x, w, b))


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize(
    "amounts,shape",
    [((1, 2), (2, 3, 4)), ((2, 0, 1, 1), (1, 2, 3, 4)), ((1, 1, 0, 2, 2, 1), (1, 1, 3, 3, 3))],
)
def test_pad_gradcheck_and_reference(mode, amounts, shape):
    rng = np.random.default_rng(3)
    x = t64(rng, *shape)
    assert cl.gradcheck(lambda x: F.pad(x, amounts, mode=mode), (x,))
    n = len(amounts) // 2
    natural = tuple((amounts[2 * i], amounts[2 * i + 1]) for i in reversed(range(n)))
    np.testing.assert_array_equal(
        F.pad(x, amounts, mode=mode).detach().numpy(), R.pad(x.detach().numpy(), natural, mode)
    )


def test_pad_value_and_negative_crop():
    x = cl.tensor(np.arange(6.0).reshape(1, 6))
    np.testing.assert_array_equal(F.pad(x, (1, 0), value=-1.0).numpy(), [[-1, 0, 1, 2, 3, 4, 5]])
    np.testing.assert_array_equal(F.pad(x, (-2, 1)).numpy(), [[2, 3, 4, 5, 0]])


def test_accepts_numpy_arrays_and_returns_tensor():
    y = F.conv1d(np.ones((1, 1, 5)), np.ones((1, 1, 3)))
    assert isinstance(y, cl.Tensor)
    np.testing.assert_array_equal(y.numpy(), [[[3.0, 3.0, 3.0]]])


def test_same_padding_with_even_kernel_warns_and_pads_at_the_end():
    x = np.arange(5.0).reshape(1, 1, 5)
    w = np.array([[[1.0, 0.0, 0.0, 0.0]]])  # picks the first tap of each window
    with pytest.warns(UserWarning, match="even kernel lengths"):
        y = F.conv1d(x, w, padding="same")
    # Total padding 3 is split (1, 2): window i starts at input i - 1.
    np.testing.assert_array_equal(y.numpy(), [[[0.0, 0.0, 1.0, 2.0, 3.0]]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.conv1d(x, np.ones((1, 1, 3)), padding="same")  # odd kernel: symmetric, no warning


def test_float32_default_and_float64_kept():
    x = cl.randn(1, 2, 5, 5)
    w = cl.randn(3, 2, 3, 3)
    assert x.dtype == np.float32 and F.conv2d(x, w).dtype == np.float32
    assert F.conv2d(x.double(), w.double()).dtype == np.float64


def test_gradients_accumulate_like_torch():
    rng = np.random.default_rng(0)
    x, w = t64(rng, 1, 1, 4), t64(rng, 1, 1, 2)
    F.conv1d(x, w).sum().backward()
    first = w.grad.numpy().copy()
    F.conv1d(x, w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * first)


# --- Bad input: one test per rule, checking the type and that the message names the problem ---

X = np.zeros((1, 3, 8, 8), np.float32)
W = np.zeros((4, 3, 3, 3), np.float32)

ERROR_CASES = [
    (
        "rank",
        lambda: F.conv2d(np.zeros((1, 3, 4, 4, 4), np.float32), W),
        RuntimeError,
        r"Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d, but got input of size: "
        r"\[1, 3, 4, 4, 4\]",
    ),
    (
        "weight rank",
        lambda: F.conv2d(X, np.zeros((4, 3, 3), np.float32)),
        RuntimeError,
        r"weight must have 4 dimensions.*\[4, 3, 3\]",
    ),
    (
        "channels",
        lambda: F.conv2d(np.zeros((1, 4, 32, 32), np.float32), np.zeros((16, 3, 3, 3), np.float32)),
        RuntimeError,
        r"Given groups=1, weight of size \[16, 3, 3, 3\], expected input\[1, 4, 32, 32\] to have "
        r"3 channels, but got 4 channels instead",
    ),
    (
        "groups divide weight",
        lambda: F.conv2d(
            np.zeros((1, 4, 8, 8), np.float32), np.zeros((3, 2, 3, 3), np.float32), groups=2
        ),
        RuntimeError,
        r"Given groups=2, expected weight to be divisible by 2 at dimension 0",
    ),
    (
        "groups positive",
        lambda: F.conv2d(X, W, groups=0),
        RuntimeError,
        r"non-positive groups is not supported, but got groups=0",
    ),
    (
        "kernel too large",
        lambda: F.conv2d(X, np.zeros((4, 3, 9, 9), np.float32)),
        RuntimeError,
        r"Calculated padded input size per channel: \(8 x 8\). Kernel size: \(9 x 9\). Kernel size "
        r"can't be greater than actual input size",
    ),
    (
        "dilated kernel too large",
        lambda: F.conv2d(X, W, dilation=4),
        RuntimeError,
        r"Kernel size: \(9 x 9\)",
    ),
    (
        "same strided",
        lambda: F.conv2d(X, W, padding="same", stride=2),
        ValueError,
        r"padding='same' is not supported for strided convolutions",
    ),
    (
        "padding string",
        lambda: F.conv2d(X, W, padding="SAME"),
        ValueError,
        r"Invalid padding string 'SAME', should be one of \{'same', 'valid'\}",
    ),
    (
        "stride",
        lambda: F.conv2d(X, W, stride=0),
        RuntimeError,
        r"non-positive stride is not supported, but got stride=\[0, 0\]",
    ),
    (
        "dilation",
        lambda: F.conv2d(X, W, dilation=(1, 0)),
        RuntimeError,
        r"dilation should be greater than zero, but got \[1, 0\]",
    ),
    (
        "negative padding",
        lambda: F.conv2d(X, W, padding=-1),
        RuntimeError,
        r"negative padding is not supported, but got padding=\[-1, -1\]",
    ),
    (
        "tuple length",
        lambda: F.conv2d(X, W, stride=(1, 2, 3)),
        RuntimeError,
        r"expected stride to be a single integer value or a list of 2 values to match the "
        r"convolution dimensions, but got stride=\[1, 2, 3\]",
    ),
    ("non-integer", lambda: F.conv2d(X, W, stride=1.5), TypeError, r"stride.*1\.5"),
    (
        "bias shape",
        lambda: F.conv2d(X, W, np.zeros(5, np.float32)),
        RuntimeError,
        r"expected bias to be 1-dimensional with 4 elements, but got bias of size \[5\]",
    ),
    (
        "dtype mismatch",
        lambda: F.conv2d(X.astype(np.float64), W),
        RuntimeError,
        r"input type \(double\) and weight type \(float\) should be the same",
    ),
    (
        "integer input",
        lambda: F.conv2d(X.astype(np.int64), W.astype(np.int64)),
        RuntimeError,
        r"input must be float32 or float64, but got int64",
    ),
    (
        "float16 input",
        lambda: F.conv2d(X.astype(np.float16), W.astype(np.float16)),
        RuntimeError,
        r"input must be float32 or float64, but got float16",
    ),
    (
        "not an array",
        lambda: F.conv2d([[1.0]], W),
        TypeError,
        r"conv2d\(\): argument 'input' must be a Tensor or numpy.ndarray, not list",
    ),
    (
        "output_padding",
        lambda: F.conv_transpose2d(
            X, np.zeros((3, 4, 3, 3), np.float32), stride=2, output_padding=2
        ),
        RuntimeError,
        r"output padding must be smaller than either stride or dilation, but got "
        r"output_padding_height: 2 output_padding_width: 2 stride_height: 2 stride_width: 2 "
        r"dilation_height: 1 dilation_width: 1",
    ),
    (
        "output_padding 1d",
        lambda: F.conv_transpose1d(
            np.zeros((1, 3, 5), np.float32),
            np.zeros((3, 4, 3), np.float32),
            stride=2,
            output_padding=2,
        ),
        RuntimeError,
        r"output_padding_height: 0 output_padding_width: 2 stride_height: 1 stride_width: 2",
    ),
    (
        "negative output_padding",
        lambda: F.conv_transpose2d(X, np.zeros((3, 4, 3, 3), np.float32), output_padding=-1),
        RuntimeError,
        r"negative output_padding is not supported",
    ),
    (
        "transposed channels",
        lambda: F.conv_transpose2d(X, np.zeros((4, 4, 3, 3), np.float32)),
        RuntimeError,
        r"Given transposed=1, weight of size \[4, 4, 3, 3\], expected "
        r"input\[1, 3, 8, 8\] to have 4 channels, but got 3 channels instead",
    ),
    (
        "transposed too small",
        lambda: F.conv_transpose2d(
            np.zeros((1, 3, 1, 1), np.float32), np.zeros((3, 4, 3, 3), np.float32), padding=2
        ),
        RuntimeError,
        r"Given input size per channel: \(1 x 1\). Calculated output size per "
        r"channel: \(-1 x -1\). Output size is too small",
    ),
    (
        "transposed string padding",
        lambda: F.conv_transpose2d(X, np.zeros((3, 4, 3, 3), np.float32), padding="same"),
        TypeError,
        r"padding must be an int or a tuple.*padding='same'",
    ),
    (
        "pad odd length",
        lambda: F.pad(X, (1, 2, 3)),
        RuntimeError,
        r"Padding length must be divisible by 2",
    ),
    (
        "pad too long",
        lambda: F.pad(X, (1, 1) * 5),
        RuntimeError,
        r"padding length 10 and input of dimension 4",
    ),
    (
        "pad mode",
        lambda: F.pad(X, (1, 1), mode="bogus"),
        NotImplementedError,
        r"Unrecognised padding mode 'bogus'",
    ),
    (
        "reflect too large",
        lambda: F.pad(X, (8, 1, 0, 0), mode="reflect"),
        RuntimeError,
        r"Padding size should be less than the corresponding input dimension, but got: "
        r"padding \(8, 1\) at dimension 3 of input \[1, 3, 8, 8\]",
    ),
    (
        "circular wraps twice",
        lambda: F.pad(X, (9, 1, 0, 0), mode="circular"),
        RuntimeError,
        r"Padding value causes wrapping around more than once",
    ),
    (
        "value with reflect",
        lambda: F.pad(X, (1, 1, 1, 1), mode="reflect", value=2.0),
        RuntimeError,
        r'Padding mode "reflect" doesn\'t take in value argument',
    ),
    (
        "reflect rank",
        lambda: F.pad(X, (1, 1), mode="reflect"),
        NotImplementedError,
        r"Padding size 2 is not supported for 4D input tensor",
    ),
]


@pytest.mark.parametrize("name,call,error,message", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_is_refused_clearly(name, call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_single_batches_backward_like_torch(torch, n, threads):
    # An empty batch once failed in the weight-gradient (a zero chunk step).
    before = cl.get_num_threads()
    cl.set_num_threads(threads)
    try:
        rng = np.random.default_rng(n)
        xa = rng.standard_normal((n, 3, 7, 6)).astype(np.float32)
        wa = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        ba = rng.standard_normal(4).astype(np.float32)
        x, w, b = (cl.tensor(a, requires_grad=True) for a in (xa, wa, ba))
        y = F.conv2d(x, w, b, padding=1)
        g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(cl.tensor(g))
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
        ty = torch.nn.functional.conv2d(tx, tw, tb, padding=1)
        ty.backward(torch.tensor(g))
        for ours, theirs in ((y, ty), (x.grad, tx.grad), (w.grad, tw.grad), (b.grad, tb.grad)):
            np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-5, atol=1e-5)
    finally:
        cl.set_num_threads(before)
