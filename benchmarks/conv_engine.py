"""Time conv2d forward and backward in convlab and PyTorch, same data, same thread count.

    python benchmarks/conv_engine.py [--threads 2] [--repeats 11]

Workload W1b of shared/reference/baselines.md (N=8, C=64, 56x56, k=3, padding=1, C_out=64)
plus LeNet-5's two convolutions. Prints median times and the ratio torch_time / convlab_time
(above 1.0 means convlab is faster). Also checks the outputs agree.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import numpy as np

    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed: timing convlab only", file=sys.stderr)
    else:
        torch.set_num_threads(args.threads)

    def median_ms(fn):
        fn()
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return 1e3 * float(np.median(times))

    workloads = [
        ("W1b conv2d N8 C64 56x56 k3 p1 Co64", (8, 64, 56, 56), (64, 64, 3, 3), 1),
        ("LeNet conv1 N64 C1 28x28 k5 p2 Co6", (64, 1, 28, 28), (6, 1, 5, 5), 2),
        ("LeNet conv2 N64 C6 14x14 k5 Co16", (64, 6, 14, 14), (16, 6, 5, 5), 0),
    ]
    rng = np.random.default_rng(0)
    print(f"threads={args.threads}, median of {args.repeats}")
    print(f"{'workload':38s} {'pass':9s} {'convlab ms':>11s} {'torch ms':>9s} {'ratio':>6s}")
    for workload in workloads:
        time_workload(*workload, rng=rng, median_ms=median_ms, torch=torch)
    return 0


def time_workload(name, x_shape, w_shape, padding, *, rng, median_ms, torch):
    import numpy as np

    import convlab as cl
    import convlab.nn.functional as F

    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    cx, cw = cl.tensor(x, requires_grad=True), cl.tensor(w, requires_grad=True)

    def ours_forward():
        with cl.no_grad():
            return F.conv2d(cx, cw, padding=padding)

    def ours_backward():
        cx.grad = cw.grad = None
        F.conv2d(cx, cw, padding=padding).sum().backward()

    rows = [("forward", ours_forward), ("fwd+bwd", ours_backward)]
    if torch is not None:
        tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)

        def torch_forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, padding=padding)

        def torch_backward():
            tx.grad = tw.grad = None
            torch.nn.functional.conv2d(tx, tw, padding=padding).sum().backward()

        diff = np.abs(ours_forward().numpy() - torch_forward().numpy()).max()
        assert diff < 1e-3, f"{name}: outputs differ by {diff}"
        theirs = {"forward": torch_forward, "fwd+bwd": torch_backward}
    for label, fn in rows:
        ours_ms = median_ms(fn)
        if torch is not None:
            time.sleep(0.5)  # let NumPy's BLAS threads go idle before torch's OpenMP threads run
            torch_ms = median_ms(theirs[label])
            time.sleep(0.5)
            print(
                f"{name:38s} {label:9s} {ours_ms:11.2f} {torch_ms:9.2f} {torch_ms / ours_ms:6.2f}"
            )
        else:
            print(f"{name:38s} {label:9s} {ours_ms:11.2f}")
    plain_ms = median_ms(lambda: plain_numpy_conv(x, w, padding))
    print(f"{name:38s} {'plain np':9s} {plain_ms:11.2f}   (sliding_window_view + one tensordot)")


def plain_numpy_conv(x, w, padding):
    """The textbook NumPy convolution: a window view and one tensordot (no convlab)."""
    import numpy as np

    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    return np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


if __name__ == "__main__":
    raise SystemExit(main())
