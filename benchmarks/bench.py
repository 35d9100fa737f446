"""The benchmark suite from a checkout: the same code as ``convlab bench``.

    python benchmarks/bench.py [--only W1b,W2] [--threads 2] [--repeats 11] [--json out.json]

Times convlab beside PyTorch on the workloads of shared/reference/baselines.md and prints the
table (``--help`` lists every option). Needs convlab importable (``pip install -e .``, or run
from the repository root, where ``src/`` is added to the path).
"""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
if SRC.is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

from convlab.cli.main import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["bench", *sys.argv[1:]]))
