"""convlab.shapes: each formula against a count from the definition and PyTorch's edge cases."""

import itertools

import pytest

from convlab import shapes


def count_windows(size, kernel, stride, pad_lo, pad_hi, dilation):
    """Count window starts whose whole dilated extent fits in the padded input."""
    extent = dilation * (kernel - 1) + 1
    return sum(
        1
        for start in range(0, size + pad_lo + pad_hi, stride)
        if start + extent <= size + pad_lo + pad_hi
    )


@pytest.mark.parametrize(
    "size,kernel,stride,padding,dilation",
    list(itertools.product([1, 4, 5, 6, 9], [1, 2, 3, 4], [1, 2, 3], [0, 1, 2], [1, 2])),
)
def test_conv_output_size_counts_windows(size, kernel, stride, padding, dilation):
    expected = count_windows(size, kernel, stride, padding, padding, dilation)
    got = shapes.conv_output_size(size, kernel, stride, padding, dilation)
    assert max(got, 0) == expected


def test_conv_output_size_asymmetric_padding():
    assert shapes.conv_output_size(5, 4, 1, (1, 2)) == 5
    assert shapes.conv_output_size(5, 4, 2, (1, 2)) == count_windows(5, 4, 2, 1, 2, 1)


def test_five_and_six_give_three_and_output_padding_picks_between_them():
    # The learner's question: k=3, p=1, s=2 maps both 5 and 6 to 3.
    assert shapes.conv_output_size(5, 3, 2, 1) == 3
    assert shapes.conv_output_size(6, 3, 2, 1) == 3
    assert shapes.conv_transpose_output_range(3, 3, 2, 1) == (5, 6)
    assert shapes.conv_transpose_output_size(3, 3, 2, 1, 1, 0) == 5
    assert shapes.conv_transpose_output_size(3, 3, 2, 1, 1, 1) == 6
    assert shapes.output_padding_for_size(6, 3, 3, 2, 1) == 1


@pytest.mark.parametrize(
    "size,kernel,stride,padding,dilation",
    list(itertools.product([1, 3, 4, 7], [1, 2, 3], [1, 2, 3], [0, 1], [1, 2])),
)
def test_transposed_output_range_inverts_convolution(size, kernel, stride, padding, dilation):
    lo, hi = shapes.conv_transpose_output_range(size, kernel, stride, padding, dilation)
    assert hi - lo == stride - 1
    # Every size in the range is an input of the forward convolution that gives `size` outputs.
    for wanted in range(lo, hi + 1):
        if wanted > 0:
            assert shapes.conv_output_size(wanted, kernel, stride, padding, dilation) == size


def test_output_padding_for_size_rejects_out_of_range():
    with pytest.raises(ValueError, match="valid sizes range from 5 to 6"):
        shapes.output_padding_for_size(7, 3, 3, 2, 1)


@pytest.mark.parametrize(
    "size,kernel,padding,stride,expected",
    [(5, 2, 1, 2, 3), (6, 1, 0, 2, 3), (32, 1, 0, 2, 16)],  # reported cases, reference §1.3
)
def test_pool_ceil_mode_reported_cases(size, kernel, padding, stride, expected):
    assert shapes.pool_output_size(size, kernel, stride, padding, ceil_mode=True) == expected


@pytest.mark.parametrize(
    "size,kernel,stride,padding,dilation",
    [
        case
        for case in itertools.product([4, 5, 6, 7, 10], [1, 2, 3], [1, 2, 3], [0, 1], [1, 2])
        if case[3] <= case[1] // 2  # pooling padding is at most half the kernel
    ],
)
def test_pool_ceil_mode_last_window_starts_inside(size, kernel, stride, padding, dilation):
    out = shapes.pool_output_size(size, kernel, stride, padding, dilation, ceil_mode=True)
    floor = shapes.pool_output_size(size, kernel, stride, padding, dilation)
    span = size + 2 * padding - (dilation * (kernel - 1) + 1)
    assert floor <= out <= floor + 1
    if span % stride == 0:
        assert out == floor  # windows tile exactly: nothing is left for ceil to add
    # The last window starts inside the input or the left padding.
    assert (out - 1) * stride < size + padding


@pytest.mark.parametrize(
    "kernel,dilation,expected",
    [
        (3, 1, (1, 1)),
        (4, 1, (1, 2)),
        (2, 3, (1, 2)),
        (3, 2, (2, 2)),
        (1, 5, (0, 0)),
        (2, 1, (0, 1)),
    ],
)
def test_same_padding_puts_extra_at_the_end(kernel, dilation, expected):
    assert shapes.same_padding(kernel, dilation) == expected
    lo, hi = expected
    assert shapes.conv_output_size(9, kernel, 1, (lo, hi), dilation) == 9


def test_ntuple_normalises_and_rejects():
    assert shapes.ntuple(2, 3, "stride") == (2, 2, 2)
    assert shapes.ntuple((1, 2), 2, "stride") == (1, 2)
    assert shapes.ntuple([4], 2, "kernel_size") == (4, 4)
    with pytest.raises(ValueError, match="kernel_size.*length 3"):
        shapes.ntuple((1, 2, 3), 2, "kernel_size")
    with pytest.raises(TypeError, match="stride"):
        shapes.ntuple(1.5, 2, "stride")
    with pytest.raises(TypeError, match="padding"):
        shapes.ntuple((1, "a"), 2, "padding")
    with pytest.raises(TypeError, match="dilation"):
        shapes.ntuple(True, 2, "dilation")


def test_shapes_match_torch():
    torch = pytest.importorskip("torch", reason="PyTorch 2.13 not installed")
    for size, k, s, p, d in itertools.product([5, 8], [1, 3, 4], [1, 2, 3], [0, 1], [1, 2]):
        x = torch.zeros(1, 1, size)
        if size + 2 * p >= d * (k - 1) + 1:
            y = torch.nn.functional.conv1d(x, torch.zeros(1, 1, k), None, s, p, d)
            assert y.shape[-1] == shapes.conv_output_size(size, k, s, p, d)
        for ceil in (False, True):
            if p <= k // 2 and shapes.pool_output_size(size, k, s, p, d, ceil) > 0:
                y = torch.nn.functional.max_pool1d(x, k, s, p, d, ceil_mode=ceil)
                assert y.shape[-1] == shapes.pool_output_size(size, k, s, p, d, ceil)
        for op in range(max(s, d)):
            y = torch.nn.functional.conv_transpose1d(x, torch.zeros(1, 1, k), None, s, p, op, 1, d)
            assert y.shape[-1] == shapes.conv_transpose_output_size(size, k, s, p, d, op)


def test_docstring_examples_hold():
    import doctest

    result = doctest.testmod(shapes)
    assert result.attempted > 0 and result.failed == 0
