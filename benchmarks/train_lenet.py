"""The default ``convlab train`` loop, timed in convlab and in PyTorch on the same batches.

    python benchmarks/train_lenet.py [--epochs 15] [--threads 2]

Both train LeNet-5 on the shipped mnist-5k digits with Adam and the same one-cycle schedule,
batch 64, random shifts of up to 2 pixels, from the same batches (convlab's DataLoader feeds
both), each after one warm-up step on a throwaway model. Prints seconds per epoch, images/s,
the final test accuracy and the ratio of times.
"""

from __future__ import annotations

import argparse
import copy
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    import convlab as cl
    import convlab.nn.functional as F
    from convlab import optim
    from convlab.data import DataLoader, Normalize, load_mnist5k
    from convlab.models import lenet5

    torch.set_num_threads(args.threads)
    cl.set_num_threads(args.threads)
    split = load_mnist5k()
    norm = Normalize.fit(split.train.inputs)
    test_x = norm(split.test.inputs)

    def batches():
        return DataLoader(split.train, 64, shuffle=True, seed=0, normalize=norm, max_shift=2)

    results = {}
    # convlab: one step on a throwaway model first (imports, numba's cached kernels, allocator)
    x0, y0 = next(iter(batches()))
    warm = lenet5()
    F.cross_entropy(warm(x0), y0).backward()
    cl.manual_seed(0)
    model = lenet5()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    sched = optim.lr_scheduler.OneCycleLR(opt, 2e-3, epochs=args.epochs, steps_per_epoch=63)
    loader = batches()
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - start
    model.eval()
    with cl.no_grad():
        accuracy = (model(cl.Tensor(test_x)).numpy().argmax(1) == split.test.targets).mean()
    results["convlab"] = (seconds, accuracy)

    # PyTorch, the same architecture and recipe
    tnn = torch.nn
    torch.manual_seed(0)
    net = tnn.Sequential(
        tnn.Conv2d(1, 6, 5, padding=2),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Conv2d(6, 16, 5),
        tnn.ReLU(),
        tnn.MaxPool2d(2),
        tnn.Flatten(),
        tnn.Linear(400, 120),
        tnn.ReLU(),
        tnn.Linear(120, 84),
        tnn.ReLU(),
        tnn.Linear(84, 10),
    )
    topt = torch.optim.Adam(net.parameters(), lr=2e-3)
    warm = copy.deepcopy(net)  # the same warm-up step for PyTorch
    tnn.functional.cross_entropy(
        warm(torch.from_numpy(x0.data)), torch.from_numpy(y0.data)
    ).backward()
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, 2e-3, epochs=args.epochs, steps_per_epoch=63)
    loader = batches()
    time.sleep(1.0)  # let convlab's BLAS threads go idle before torch's start
    start = time.perf_counter()
    for _ in range(args.epochs):
        net.train()
        for x, y in loader:
            loss = tnn.functional.cross_entropy(
                net(torch.from_numpy(x.data)), torch.from_numpy(y.data)
            )
            topt.zero_grad()
            loss.backward()
            topt.step()
            tsched.step()
    seconds = time.perf_counter() - start
    net.eval()
    with torch.no_grad():
        accuracy = (net(torch.from_numpy(test_x)).numpy().argmax(1) == split.test.targets).mean()
    results["torch"] = (seconds, accuracy)

    images = args.epochs * len(split.train)
    print(
        f"LeNet-5, mnist-5k, {args.epochs} epochs, batch 64, Adam one-cycle 2e-3, "
        f"{args.threads} threads"
    )
    for name, (seconds, accuracy) in results.items():
        print(
            f"{name:8s} {seconds:7.2f} s  {seconds / args.epochs:5.2f} s/epoch  "
            f"{images / seconds:8,.0f} img/s  test accuracy {100 * accuracy:.2f}%"
        )
    ratio = results["torch"][0] / results["convlab"][0]
    print(f"speed ratio torch_time / convlab_time = {ratio:.2f} (above 1: convlab faster)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
