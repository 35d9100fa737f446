"""Kernels against the slow loop references, float64.

Forward passes are compared element by element with ``kernels.reference``. Backward passes are
checked through the definition of a gradient of a linear map: for ``y = A(x)``,
``<A(x), g> == <x, A^T(g)>`` must hold with the reference ``A`` and our ``A^T``.
"""

import itertools

import numpy as np
import pytest

from convlab import shapes
from convlab.kernels import conv as K
from convlab.kernels import pad as P
from convlab.kernels import reference as R


def conv_cases():
    rng = np.random.default_rng(1234)
    cases = []
    for n_spatial in (1, 2, 3):
        sizes = {1: [5, 8], 2: [5, 6], 3: [4, 5]}[n_spatial]
        for stride, dilation, groups, pad_kind in itertools.product(
            [1, 2], [1, 2], [1, 2], ["none", "sym", "asym"]
        ):
            spatial = tuple(int(rng.choice(sizes)) for _ in range(n_spatial))
            kernel = tuple(int(rng.integers(1, 4)) for _ in range(n_spatial))
            if pad_kind == "none":
                padding = ((0, 0),) * n_spatial
            elif pad_kind == "sym":
                padding = tuple((p, p) for p in rng.integers(0, 3, n_spatial))
            else:
                padding = tuple((int(a), int(a) + 1) for a in rng.integers(0, 2, n_spatial))
            padding = tuple((int(lo), int(hi)) for lo, hi in padding)
            cases.append(
                (spatial, kernel, (stride,) * n_spatial, padding, (dilation,) * n_spatial, groups)
            )
    return cases


def fits(spatial, kernel, padding, dilation):
    return all(
        s + lo + hi >= d * (k - 1) + 1
        for s, k, (lo, hi), d in zip(spatial, kernel, padding, dilation)
    )


CONV_CASES = [c for c in conv_cases() if fits(c[0], c[1], c[3], c[4])]


def make(rng, *shape):
    return rng.standard_normal(shape)


@pytest.mark.parametrize("spatial,kernel,stride,padding,dilation,groups", CONV_CASES)
def test_conv_matches_reference(spatial, kernel, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    c_in, c_out = 2 * groups, 3 * groups
    x = make(rng, 2, c_in, *spatial)
    w = make(rng, c_out, c_in // groups, *kernel)
    b = make(rng, c_out)
    args = (stride, padding, dilation, groups)
    expected = R.conv(x, w, b, *args)
    got = K.conv_forward(x, w, b, *args)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

    g = make(rng, *expected.shape)
    y_nobias = R.conv(x, w, None, *args)
    grad_x = K.conv_backward_input(g, w, x.shape, *args)
    grad_w = K.conv_backward_weight(x, g, w.shape, *args)
    assert grad_x.shape == x.shape and grad_w.shape == w.shape
    np.testing.assert_allclose(np.vdot(y_nobias, g), np.vdot(x, grad_x), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y_nobias, g), np.vdot(w, grad_w), rtol=1e-10)
    np.testing.assert_allclose(K.conv_backward_bias(g), g.sum(axis=(0, *range(2, g.ndim))))


def transpose_cases():
    rng = np.random.default_rng(99)
    cases = []
    for n_spatial in (1, 2, 3):
        for stride, dilation, groups in itertools.product([1, 2, 3], [1, 2], [1, 2]):
            spatial = tuple(int(v) for v in rng.integers(2, 5, n_spatial))
            kernel = tuple(int(v) for v in rng.integers(1, 4, n_spatial))
            padding = tuple(int(rng.integers(0, 2)) for _ in range(n_spatial))
            output_padding = tuple(
                int(rng.integers(0, max(stride, dilation))) for _ in range(n_spatial)
            )
            out = shapes.conv_transpose_output_shape(
                spatial,
                kernel,
                (stride,) * n_spatial,
                padding,
                (dilation,) * n_spatial,
                output_padding,
            )
            if min(out) > 0:
                cases.append(
                    (
                        spatial,
                        kernel,
                        (stride,) * n_spatial,
                        padding,
                        output_padding,
                        (dilation,) * n_spatial,
                        groups,
                    )
                )
    return cases


@pytest.mark.parametrize(
    "spatial,kernel,stride,padding,output_padding,dilation,groups", transpose_cases()
)
def test_conv_transpose_matches_reference(
    spatial, kernel, stride, padding, output_padding, dilation, groups
):
    rng = np.random.default_rng(1)
    c_in, c_out = 2 * groups, 3 * groups
    x = make(rng, 2, c_in, *spatial)
    w = make(rng, c_in, c_out // groups, *kernel)
    b = make(rng, c_out)
    expected = R.conv_transpose(x, w, b, stride, padding, output_padding, dilation, groups)
    got = K.conv_transpose_forward(x, w, b, stride, padding, output_padding, dilation, groups)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

    g = make(rng, *expected.shape)
    y_nobias = R.conv_transpose(x, w, None, stride, padding, output_padding, dilation, groups)
    args = (stride, padding, dilation, groups)
    grad_x = K.conv_transpose_backward_input(g, w, x.shape, *args)
    grad_w = K.conv_transpose_backward_weight(x, g, w.shape, *args)
    assert grad_x.shape == x.shape and grad_w.shape == w.shape
    np.testing.assert_allclose(np.vdot(y_nobias, g), np.vdot(x, grad_x), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y_nobias, g), np.vdot(w, grad_w), rtol=1e-10)


def test_transposed_convolution_is_the_adjoint_of_convolution():
    # <conv(x), y> == <x, conv_transpose(y)> with the same weight and arguments: Y = C X, C^T.
    rng = np.random.default_rng(5)
    x = make(rng, 2, 4, 6, 6)
    w = make(rng, 6, 2, 3, 3)
    stride, padding, dilation, groups = (2, 2), (1, 1), (1, 1), 2
    y = K.conv_forward(x, w, None, stride, ((1, 1), (1, 1)), dilation, groups)
    z = make(rng, *y.shape)
    back = K.conv_transpose_forward(z, w, None, stride, padding, (1, 1), dilation, groups)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, z), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [((1, 2),), ((2, 0), (0, 3)), ((1, 1), (2, 1), (0, 2))])
def test_pad_matches_reference(mode, padding):
    rng = np.random.default_rng(7)
    x = make(rng, 2, 3, 4, 5, 4)
    expected = R.pad(x, padding, mode)
    got = P.pad_forward(x, padding, mode)
    np.testing.assert_array_equal(got, expected)
    g = make(rng, *expected.shape)
    grad = P.pad_backward(g, x.shape, padding, mode)
    assert grad.shape == x.shape
    np.testing.assert_allclose(np.vdot(expected, g), np.vdot(x, grad), rtol=1e-12)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_negative_amounts_crop(mode):
    rng = np.random.default_rng(8)
    x = make(rng, 1, 2, 6)
    padding = ((-2, 1),)
    expected = R.pad(x, ((0, 1),), mode)[..., 2:] if mode != "constant" else x[..., 2:]
    got = P.pad_forward(x, padding, mode)
    if mode == "constant":
        np.testing.assert_array_equal(got[..., :-1], expected)
    else:
        np.testing.assert_array_equal(got, expected)
    g = make(rng, *got.shape)
    grad = P.pad_backward(g, x.shape, padding, mode)
    np.testing.assert_allclose(np.vdot(got, g), np.vdot(x, grad), rtol=1e-12)


def test_float32_stays_float32():
    rng = np.random.default_rng(2)
    x = make(rng, 1, 2, 5, 5).astype(np.float32)
    w = make(rng, 3, 2, 3, 3).astype(np.float32)
    y = K.conv_forward(x, w, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    assert y.dtype == np.float32
    assert (
        K.conv_backward_input(y, w, x.shape, (1, 1), ((1, 1), (1, 1)), (1, 1), 1).dtype
        == np.float32
    )
