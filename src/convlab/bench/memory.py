"""Peak resident memory of one W1b forward + backward, each library in a fresh process.

The child imports the library, makes the data and the tensors, and reads its resident set size
(``VmRSS``); it resets the kernel's high-water mark (writing ``5`` to ``/proc/self/clear_refs``),
runs the forward and backward once, and reads the new high-water mark (``VmHWM``). The increase
is what the convolution and its gradients cost, without the interpreter and the imports. Linux
only: elsewhere the figures are None with the reason.

    python -m convlab.bench.memory convlab 2 1.0    # prints one JSON line
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from typing import Any

__all__ = ["peak_memory"]

WORKLOAD = "W2"  # the backward of W1b: its prepare() is the forward, its run() the backward


def _status_kib() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0])  # "1234 kB"
    return values


def _measure(library: str, threads: int, scale: float) -> dict[str, Any]:
    """Runs in the child process."""
    from convlab.bench.environment import apply_threads, import_torch
    from convlab.bench.workloads import WORKLOADS

    torch = import_torch() if library == "torch" else None
    if library == "torch" and torch is None:
        return {"error": "PyTorch is not installed"}
    apply_threads(threads, torch)
    workload = WORKLOADS[WORKLOAD]
    case = workload.build(library, workload.data(scale), torch)
    gc.collect()
    try:
        before = _status_kib()["VmRSS"]
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current VmRSS
    except (OSError, KeyError) as error:
        return {"error": f"cannot read or reset the peak RSS here: {error}"}
    case.prepare()
    case.run()
    after = _status_kib()
    mib = 1 / 1024
    return {
        "rss_before_mib": before * mib,
        "peak_increase_mib": (after["VmHWM"] - before) * mib,
        "rss_increase_after_mib": (after["VmRSS"] - before) * mib,
    }


def peak_memory(library: str, threads: int, scale: float = 1.0, timeout: float = 600) -> dict:
    """Measure ``library``'s peak RSS increase over one W1b forward+backward in a subprocess."""
    command = [sys.executable, "-m", "convlab.bench.memory", library, str(threads), repr(scale)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the measuring process took longer than {timeout:g} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the measuring process failed ({done.returncode}): {last}"}
    return json.loads(lines[-1])


def main(argv: list[str]) -> int:
    library, threads, scale = argv
    print(json.dumps(_measure(library, int(threads), float(scale))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
