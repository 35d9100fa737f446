"""convlab's own threads: kernels that split their samples over threads give the same numbers.

Every split path runs here with the split forced (``MIN_PART_WORK = 0``) on 2 and 3 threads,
against the reference loops (float64) and against the same kernel on one thread.
"""

import threading

import numpy as np
import pytest

import convlab as cl
from convlab import threads
from convlab.kernels import conv as K
from convlab.kernels import parallel
from convlab.kernels import reference as R
from convlab.kernels import winograd as W


@pytest.fixture(params=["spin", "pool"])
def split(request, monkeypatch):
    """Force every kernel to split its work, handing parts to the spinning workers or to the
    thread pool; yields a setter for the thread count."""
    if request.param == "pool":
        monkeypatch.setenv("CONVLAB_SPIN", "0")
    elif not parallel._spin_available():
        pytest.skip("spinning workers need numba on x86-64")
    else:
        monkeypatch.setattr(parallel, "SPIN_AFTER", 0)  # from the first split
    before = threads.get_num_threads()
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)
    yield cl.set_num_threads
    cl.set_num_threads(before)


# -- the thread pool ---------------------------------------------------------------------------


@pytest.mark.parametrize("n,count", [(0, 1), (1, 1), (5, 2), (7, 3), (3, 3)])
def test_slices_cover_the_range_in_order(n, count):
    pieces = parallel.slices(n, count)
    assert len(pieces) == count
    covered = [i for piece in pieces for i in range(n)[piece]]
    assert covered == list(range(n))
    sizes = [len(range(n)[piece]) for piece in pieces]
    assert max(sizes) - min(sizes) <= 1


def test_parts_respects_threads_items_and_work(split, monkeypatch):
    split(3)
    assert parallel.parts(10, 1.0) == 3
    assert parallel.parts(2, 1.0) == 2
    assert parallel.parts(1, 1.0) == 1
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 100.0)
    assert parallel.parts(10, 250.0) == 2  # two parts' worth of work
    assert parallel.parts(10, 50.0) == 1
    split(1)
    assert parallel.parts(10, 1e12) == 1


def test_run_uses_other_threads_and_returns_results_in_order(split):
    split(3)
    names = parallel.run(lambda part: (part, threading.current_thread().name), 9, 3)
    assert [part for part, _ in names] == parallel.slices(9, 3)
    assert names[0][1] == threading.current_thread().name
    assert all(name.startswith("convlab") for _, name in names[1:])


def test_nested_runs_stay_on_their_thread(split):
    split(2)

    def outer(part):
        return parallel.parts(8, 1e9)  # asked from inside a part

    assert parallel.run(outer, 4, 2) == [1, 1]


def test_an_error_in_any_part_is_raised_after_all_parts_finish(split):
    split(2)
    finished = []

    def fail_second(part):
        if part.start:
            raise ValueError("second part failed")
        finished.append(part)

    with pytest.raises(ValueError, match="second part failed"):
        parallel.run(fail_second, 4, 2)
    assert finished == [slice(0, 2)]


def test_spinning_workers_go_to_sleep_and_wake_for_the_next_part(split):
    import time

    split(3)
    parallel.run(lambda part: part, 9, 3)
    expected = parallel.slices(9, 3)
    assert parallel.run(lambda part: part, 9, 3) == expected
    time.sleep(5 * parallel.SPIN_SECONDS)  # past the spin: the workers sleep now
    assert parallel.run(lambda part: part, 9, 3) == expected
    parallel.stop_spinning()  # as before numba's own parallel loops
    assert parallel.run(lambda part: part, 9, 3) == expected


def test_two_callers_at_once_both_get_their_results(split):
    split(2)
    errors = []

    def caller(offset):
        try:
            for _ in range(200):
                got = parallel.run(lambda part: [i + offset for i in range(8)[part]], 8, 2)
                assert [v for chunk in got for v in chunk] == [i + offset for i in range(8)]
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    callers = [threading.Thread(target=caller, args=(k * 100,)) for k in range(2)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()
    assert errors == []


def test_set_num_threads_holds_the_blas_at_one_thread():
    before = threads.get_num_threads()
    try:
        assert cl.set_num_threads(3) in (True, False)
        assert cl.get_num_threads() == 3
        assert threads.blas_held()
        if threads.get_blas_threads() is not None:  # an OpenBLAS was found
            assert threads.get_blas_threads() == 1
            with threads.blas_threads(2):
                assert threads.get_blas_threads() == 2
            assert threads.get_blas_threads() == 1
    finally:
        cl.set_num_threads(before)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_non_positive_integers(bad):
    with pytest.raises(ValueError, match="positive integer"):
        cl.set_num_threads(bad)


# -- kernels, split against the reference and against one thread -------------------------------


CONV_CASES = [
    # (x shape, weight shape, stride, padding, dilation, groups)
    ((5, 2, 9, 8), (3, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # wide columns
    ((5, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((1, 0), (0, 2)), (1, 2), 2),  # strided, groups
    ((4, 3, 11), (5, 3, 3), (1,), ((2, 1),), (2,), 1),  # 1-d
    ((3, 2, 5, 4, 6), (4, 2, 2, 3, 2), (1, 2, 1), ((1, 1), (0, 0), (1, 0)), (1, 1, 1), 1),  # 3-d
    ((6, 8, 5, 5), (4, 8, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # pointwise
    ((4, 2, 7, 7), (40, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # many outputs
]


def _conv_passes(x, w, stride, padding, dilation, groups, g, keep):
    workspace = {} if keep else None
    y = K.conv_forward(x, w, None, stride, padding, dilation, groups, workspace)
    gx = K.conv_backward_input(g, w, x.shape, stride, padding, dilation, groups)
    gw = K.conv_backward_weight(x, g, w.shape, stride, padding, dilation, groups, workspace)
    return y, gx, gw


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("keep", [False, True])
def test_conv_gemm_passes_split_over_threads(case, count, keep, split, monkeypatch):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(sum(x_shape) + count)
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    y_ref = R.conv(x, w, None, stride, padding, dilation, groups)
    g = rng.standard_normal(y_ref.shape)
    monkeypatch.setattr(K, "CHUNK_BYTES", x[0].nbytes * 2)  # several chunks per part
    with cl.conv_algorithm("gemm"):
        split(1)
        serial = _conv_passes(x, w, stride, padding, dilation, groups, g, keep)
        split(count)
        threaded = _conv_passes(x, w, stride, padding, dilation, groups, g, keep)
    np.testing.assert_allclose(threaded[0], y_ref, rtol=1e-12, atol=1e-12)
    for got, want in zip(threaded, serial):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    y, gx, gw = threaded
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(x, gx), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(w, gw), rtol=1e-10)


def test_conv_bias_split_over_threads(split):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    args = ((1, 1), ((1, 1), (1, 1)), (1, 1), 1)
    split(2)
    with cl.conv_algorithm("gemm"):
        y = K.conv_forward(x, w, b, *args)
    ref = R.conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), *args)
    assert y.dtype == np.float32
    assert np.abs(y - ref).max() / np.abs(ref).max() < 1e-6


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("stride", [(2, 1), (1, 1)])  # phase fold; shifted gradient
def test_conv_transpose_split_over_threads(count, stride, split):
    rng = np.random.default_rng(count)
    x = rng.standard_normal((5, 4, 6, 5))
    w = rng.standard_normal((4, 3, 4, 3))
    b = rng.standard_normal(3)  # added by each thread to its own samples
    split(count)
    output_padding = (1, 0) if stride[0] > 1 else (0, 0)
    y = K.conv_transpose_forward(x, w, b, stride, (1, 0), output_padding, (1, 1), 1)
    ref = R.conv_transpose(x, w, b, stride, (1, 0), output_padding, (1, 1), 1)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", ["numpy", "numba"])
@pytest.mark.parametrize("tile", [2, 4])
@pytest.mark.parametrize("chunk_tiles", [1, 10**6])
def test_winograd_pipeline_splits_over_threads(tile, impl, chunk_tiles, split, monkeypatch):
    """Each thread runs transforms and products on its own images: one image per chunk, or
    all of them in one."""
    if impl == "numba" and not W._jit.numba_available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(tile)
    x = rng.standard_normal((7, 4, 9, 10))
    w = rng.standard_normal((5, 4, 3, 3))
    padding = ((1, 1), (1, 0))
    monkeypatch.setattr(W, "CHUNK_TILES", chunk_tiles)
    split(3)
    y = W.winograd_conv2d_forward(x, w, None, padding, tile, impl=impl)
    ref = R.conv(x, w, None, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(ref.shape)
    gw = W.winograd_conv2d_backward_weight(x, g, padding, tile, impl=impl)
    gw_ref = K.conv_backward_weight(x, g, w.shape, (1, 1), padding, (1, 1), 1)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("count", [2, 3])
@pytest.mark.parametrize("padding", [((2, 2), (2, 2)), ((1, 3), (0, 2))])
def test_dilated_winograd_splits_its_phases_over_threads(count, padding, split):
    """Each thread splits, convolves and merges the phases of its own images."""
    rng = np.random.default_rng(count)
    x = rng.standard_normal((5, 4, 11, 10))
    w = rng.standard_normal((3, 4, 3, 3))
    b = rng.standard_normal(3)
    args = ((1, 1), padding, (2, 3), 1)
    split(count)
    ref = R.conv(x, w, b, *args)
    g = rng.standard_normal(ref.shape)
    with cl.conv_algorithm("winograd"):
        y = K.conv_forward(x, w, b, *args)
        gx = K.conv_backward_input(g, w, x.shape, *args)
        gw = K.conv_backward_weight(x, g, w.shape, *args)
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10)
    with cl.conv_algorithm("gemm"):
        gx_ref = K.conv_backward_input(g, w, x.shape, *args)
        gw_ref = K.conv_backward_weight(x, g, w.shape, *args)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("m,k,n", [(7, 5, 3), (2, 4, 9), (1, 3, 1)])
def test_gemm_splits_rows_or_columns(m, k, n, split):
    rng = np.random.default_rng(m)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    split(2)
    np.testing.assert_allclose(parallel.gemm(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(parallel.gemm(a, b.T.copy().T), a @ b, rtol=1e-12)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork (POSIX)")
def test_a_forked_child_starts_its_own_threads(split):
    import os
    import signal

    split(2)
    parallel.run(lambda part: None, 4, 2)  # the parent's pool exists now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a split must run (not wait for the parent's threads) and be right
        signal.alarm(30)  # a hang kills the child (SIGALRM), which fails the test
        try:
            x = np.arange(12.0).reshape(4, 3)
            ok = np.allclose(parallel.gemm(x, x.T), x @ x.T)
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and status == 0


@pytest.mark.parametrize("count", [2, 3])
def test_numba_direct_kernels_split_over_convlab_threads(count, split):
    from convlab.kernels import _jit
    from convlab.kernels import depthwise as DW

    if not _jit.numba_available():
        pytest.skip("numba not installed: pip install 'convlab[fast]'")
    rng = np.random.default_rng(count)
    x = rng.standard_normal((5, 6, 9, 8))
    w = rng.standard_normal((12, 1, 3, 2))  # depthwise, channel multiplier 2
    b = rng.standard_normal(12)
    args = ((1, 2), ((1, 1), (0, 1)), (2, 1), 6)
    y_ref = R.conv(x, w, b, *args)
    g = rng.standard_normal(y_ref.shape)
    split(1)
    gx1 = DW.direct_conv_backward_input(g, w, x.shape, *args, impl="numba")
    gw1 = DW.direct_conv_backward_weight(x, g, w.shape, *args, impl="numba")
    split(count)
    y = DW.direct_conv_forward(x, w, b, *args, impl="numba")
    gx = DW.direct_conv_backward_input(g, w, x.shape, *args, impl="numba")
    gw = DW.direct_conv_backward_weight(x, g, w.shape, *args, impl="numba")
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(gx, gx1)
    np.testing.assert_allclose(gw, gw1, rtol=1e-12, atol=1e-12)  # partial sums per slice
    y0 = R.conv(x, w, None, *args)
    np.testing.assert_allclose(np.vdot(y0, g), np.vdot(x, gx), rtol=1e-10)
    np.testing.assert_allclose(np.vdot(y0, g), np.vdot(w, gw), rtol=1e-10)


def test_the_first_splits_go_to_the_thread_pool(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PART_WORK", 0)
    monkeypatch.setattr(parallel, "SPIN_AFTER", 3)
    monkeypatch.setattr(parallel, "_splits", 0)
    before = threads.get_num_threads()
    cl.set_num_threads(2)
    try:
        names = [
            parallel.run(lambda part: threading.current_thread().name, 4, 2)[1] for _ in range(5)
        ]
    finally:
        cl.set_num_threads(before)
    assert all(not name.startswith("convlab-spin") for name in names[:3])
    if parallel._spin_available():
        assert all(name.startswith("convlab-spin") for name in names[3:])
