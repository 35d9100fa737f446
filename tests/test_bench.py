"""The benchmark suite (``convlab.bench``, ``convlab bench``): workloads, work counts, reports.

Runs are tiny (batch scaled to one sample, one repeat, no idle pauses), so the whole file takes
seconds; the timings they produce are meaningless and only their presence is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from convlab.bench import BenchOptions, format_report, run_benchmarks, select_workloads
from convlab.bench.runner import _max_rel_diff, _time_case
from convlab.bench.workloads import ALIASES, WORKLOADS, Case

CONVLAB = [sys.executable, "-m", "convlab.cli.main"]
TINY = ["--repeats", "1", "--warmup", "1", "--warmup-time", "0", "--scale", "0.02", "--pause", "0"]
TINY += ["--gemm-size", "64"]

FORWARD = ["W1a", "W1b", "W1c", "W1d", "W1e", "W1f", "W3", "W4", "W5"]
EXPECTED = {*FORWARD, "W2", "W6i", "W6ii"} | {f"{n}-bwd" for n in FORWARD if n != "W1b"}

REPORT_KEYS = {
    "report_version", "environment", "settings", "gemm", "workloads", "geomean_ratio", "memory",
    "notes",
}  # fmt: skip
ENVIRONMENT_KEYS = {
    "date", "python", "platform", "cpu_model", "cpu_count", "convlab", "numpy", "torch", "numba",
    "convlab_threads", "blas_threads",
}  # fmt: skip
ROW_KEYS = {
    "name", "description", "unit", "kind", "backward", "gemm_bound", "work",
    "convlab_ms", "convlab_times_ms", "convlab_rate", "convlab_error",
    "torch_ms", "torch_times_ms", "torch_rate", "torch_error",
    "ratio", "max_rel_diff", "mismatch", "gemm_percent", "torch_gemm_percent",
}  # fmt: skip


def convlab(*args, timeout=300):
    return subprocess.run(
        [*CONVLAB, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# -- the workload list -------------------------------------------------------------------------


def test_every_baseline_workload_and_every_backward_is_there_once():
    names = list(WORKLOADS)
    assert set(names) == EXPECTED
    assert all(w.name == key for key, w in WORKLOADS.items())
    assert len({w.description for w in WORKLOADS.values()}) == len(names)
    # W1b's backward is W2; people may still call it W1b-bwd
    assert ALIASES == {"W1b-bwd": "W2"}
    assert WORKLOADS["W2"].backward and WORKLOADS["W2"].spec == WORKLOADS["W1b"].spec
    for name in FORWARD:
        backward = WORKLOADS[ALIASES.get(f"{name}-bwd", f"{name}-bwd")]
        assert not WORKLOADS[name].backward and backward.backward
        assert backward.spec == WORKLOADS[name].spec


def test_units_follow_the_baselines():
    units = {name: w.unit for name, w in WORKLOADS.items()}
    assert units["W5"] == units["W5-bwd"] == "GB/s"
    assert units["W6i"] == units["W6ii"] == "img/s"
    assert all(u == "GFLOP/s" for n, u in units.items() if not n.startswith(("W5", "W6")))


# -- work counts from the definitions ----------------------------------------------------------


def test_conv2d_flops_w1b_and_its_backward():
    # 2 * N * C_out * H_out * W_out * (C_in / groups) * kh * kw, H_out = (56 + 2*1 - 3) / 1 + 1
    h_out = (56 + 2 * 1 - 3) // 1 + 1
    flops = 2 * 8 * 64 * h_out * h_out * 64 * 3 * 3
    assert flops == 1_849_688_064
    assert WORKLOADS["W1b"].work() == flops
    assert WORKLOADS["W2"].work() == 2 * flops  # dX and dW each cost a forward
    # baselines.md: 11-13 ms is 139-168 GFLOP/s
    assert WORKLOADS["W1b"].rate(0.0115) == pytest.approx(flops / 0.0115 / 1e9)
    assert 139 < WORKLOADS["W1b"].rate(0.013) < WORKLOADS["W1b"].rate(0.011) < 169


def test_strided_grouped_and_dilated_flops():
    h_c = (28 + 2 * 1 - 3) // 2 + 1  # W1c: stride 2 halves 28 to 14
    assert WORKLOADS["W1c"].work() == 2 * 8 * 256 * h_c * h_c * 128 * 9
    # W1d depthwise: each output channel sees C_in / groups = 1 input channel
    assert WORKLOADS["W1d"].work() == 2 * 8 * 128 * 56 * 56 * 1 * 9
    h_f = (56 + 2 * 2 - 2 * (3 - 1) - 1) // 1 + 1  # W1f: dilation 2, padding 2 keeps 56
    assert WORKLOADS["W1f"].work() == 2 * 8 * 64 * h_f * h_f * 64 * 9
    assert WORKLOADS["W4"].work() == 2 * 32 * 64 * 1024 * 64 * 7  # conv1d, padding 3 keeps 1024


def test_transposed_conv_counts_its_real_multiply_adds():
    # every input pixel meets every weight once: 2 * N * C_in * H * W * C_out * kh * kw
    flops = 2 * 8 * 64 * 28 * 28 * 32 * 4 * 4
    assert WORKLOADS["W3"].work() == flops
    assert round(flops / 1e9, 3) == 0.411  # the figure baselines.md quotes


def test_pooling_bytes_and_images():
    # float32 input 112x112 plus output 56x56, 8 x 64 planes
    assert WORKLOADS["W5"].work() == 8 * 64 * (112 * 112 + 56 * 56) * 4
    assert WORKLOADS["W5"].rate(0.0224) == pytest.approx(1.43, abs=0.01)  # baselines: 1.4 GB/s
    assert WORKLOADS["W6i"].work() == 64 and WORKLOADS["W6ii"].work() == 256
    assert WORKLOADS["W6ii"].rate(0.0111) == pytest.approx(256 / 0.0111)


def test_scale_shrinks_the_batch_but_keeps_one_sample():
    assert WORKLOADS["W1b"].work(0.5) == 2 * 4 * 64 * 56 * 56 * 64 * 9
    assert WORKLOADS["W1b"].work(0.001) == 2 * 1 * 64 * 56 * 56 * 64 * 9
    data = WORKLOADS["W6i"].data(0.25)
    assert data["x"].shape == (16, 1, 28, 28) and data["x"].dtype == np.float32
    assert data["y"].dtype == np.int64


def test_data_is_float32_and_the_same_for_forward_and_backward():
    forward, backward = WORKLOADS["W1c"].data(0.125), WORKLOADS["W1c-bwd"].data(0.125)
    assert forward["x"].shape == (1, 128, 28, 28) and forward["g"].shape == (1, 256, 14, 14)
    for key in "xwbg":
        assert forward[key].dtype == np.float32
        np.testing.assert_array_equal(forward[key], backward[key])


def test_max_rel_diff_is_relative_to_torch_and_takes_the_worst_output():
    ours = [np.array([1.0, 2.0]), np.array([10.0])]
    theirs = [np.array([1.0, 2.004]), np.array([10.0])]
    assert _max_rel_diff(ours, theirs) == pytest.approx(0.004 / 2.004)
    assert _max_rel_diff([np.zeros(2)], [np.zeros(3)]) == float("inf")


# -- selection ---------------------------------------------------------------------------------


def test_only_takes_exact_names_prefixes_and_the_alias():
    assert [w.name for w in select_workloads(["W1b", "W2"])] == ["W1b", "W2"]
    assert [w.name for w in select_workloads(["w1a"])] == ["W1a"]  # exact name, any case
    w1 = [w.name for w in select_workloads(["W1"])]
    assert w1 == [n for n in WORKLOADS if n.startswith("W1")] and len(w1) == 11
    assert [w.name for w in select_workloads(["W6"])] == ["W6i", "W6ii"]
    assert [w.name for w in select_workloads(["W1b-bwd"])] == ["W2"]
    assert len(select_workloads(None)) == len(EXPECTED)


def test_unknown_workload_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown workload 'W9'.*W1a, W1a-bwd"):
        select_workloads(["W1b", "W9"])


# -- a tiny full run through the command line ----------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    result = convlab("bench", *TINY, "--memory", "--json", path)
    assert result.returncode == 0, result.stderr
    return result, json.loads(path.read_text())


def test_tiny_run_writes_every_field(tiny_run):
    result, report = tiny_run
    assert set(report) == REPORT_KEYS
    assert set(report["environment"]) == ENVIRONMENT_KEYS
    assert report["environment"]["numpy"] == np.__version__
    assert report["settings"]["threads"]["requested"] >= 1
    assert report["settings"]["repeats"] == 1 and report["settings"]["scale"] == 0.02
    assert report["gemm"]["size"] == 64 and report["gemm"]["numpy_gflops"] > 0
    assert [row["name"] for row in report["workloads"]] == list(WORKLOADS)
    for row in report["workloads"]:
        assert set(row) == ROW_KEYS, row["name"]
        assert row["convlab_error"] is None, row["convlab_error"]
        assert row["convlab_ms"] > 0 and len(row["convlab_times_ms"]) == 1
        assert (row["gemm_percent"] is None) == (row["kind"] != "conv")
    memory = report["memory"]
    assert memory["convlab"]["peak_increase_mib"] > 0, memory
    for row in report["workloads"]:
        assert row["name"] in result.stdout


def test_tiny_run_agrees_with_torch(tiny_run, torch):
    _, report = tiny_run
    assert report["environment"]["torch"] == torch.__version__
    for row in report["workloads"]:
        assert row["torch_error"] is None, row["torch_error"]
        assert row["ratio"] == pytest.approx(row["torch_ms"] / row["convlab_ms"])
        assert row["max_rel_diff"] < 1e-3 and not row["mismatch"], row["name"]
    ratios = [row["ratio"] for row in report["workloads"]]
    assert report["geomean_ratio"] == pytest.approx(np.exp(np.mean(np.log(ratios))))
    assert report["memory"]["torch"]["peak_increase_mib"] > 0
    assert report["memory"]["ratio"] == pytest.approx(
        report["memory"]["convlab"]["peak_increase_mib"]
        / report["memory"]["torch"]["peak_increase_mib"]
    )


def test_the_table_shows_ratios_and_flags_a_mismatch(tiny_run, torch):
    result, report = tiny_run
    assert "geometric mean of the 20 ratios" in result.stdout
    assert "peak RSS increase" in result.stdout and "MISMATCH" not in result.stdout
    report["workloads"][0].update(max_rel_diff=0.5, mismatch=True)
    table = format_report(report)
    assert "5.0e-01 MISMATCH" in table and "MISMATCH (max rel diff > 0.001): W1a" in table


def test_json_to_stdout_leaves_it_parseable():
    result = convlab("bench", *TINY, "--only", "W5", "--json", "-")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["name"] for row in report["workloads"]] == ["W5"]
    assert report["memory"] is None  # a filtered run skips the memory measurement
    assert "W5" in result.stderr  # the table went to stderr


def test_cli_rejects_unknown_workloads_and_bad_threads(tmp_path):
    assert_clean_error(convlab("bench", "--only", "W1b,W7x"), "unknown workload 'W7x'")
    assert_clean_error(convlab("bench", "--threads", "0"), "--threads", "0")
    assert_clean_error(convlab("bench", "--threads", "two"), "--threads", "'two'")
    assert_clean_error(convlab("bench", "--json", tmp_path / "missing" / "r.json"), "--json")


def test_help_shows_examples():
    result = convlab("bench", "--help")
    assert result.returncode == 0
    assert "convlab bench --only W1b,W2" in result.stdout and "--threads" in result.stdout


# -- without PyTorch -----------------------------------------------------------------------------


def test_without_torch_the_table_has_convlab_columns_only(monkeypatch, capsys):
    from convlab.cli.main import main

    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    assert main(["bench", *TINY, "--only", "W5,W1a"]) == 0
    out = capsys.readouterr().out
    assert "torch ms" not in out and "ratio" not in out and "geometric mean" not in out
    assert "convlab ms" in out and "W5" in out and "W1a" in out
    assert "PyTorch is not installed" in out


def test_no_torch_option_reports_convlab_alone():
    report = run_benchmarks(
        BenchOptions(only=["W6ii"], repeats=1, warmup=1, scale=0.01, use_torch=False, pause=0,
                     gemm_size=64, memory=True, warmup_seconds=0)
    )  # fmt: skip
    (row,) = report["workloads"]
    assert row["torch_ms"] is None and row["ratio"] is None and row["convlab_rate"] > 0
    assert report["settings"]["torch"] is False and report["geomean_ratio"] is None
    assert report["memory"]["torch"] is None and report["memory"]["ratio"] is None
    assert "--no-torch" in format_report(report)


@pytest.mark.parametrize("seconds,least", [(0.0, 3), (0.06, 6)])
def test_warm_up_runs_its_calls_and_at_least_its_time(seconds, least):
    calls = []

    def run():
        calls.append(1)
        time.sleep(0.01)

    times, outputs = _time_case(Case(run, lambda: [np.ones(2)]), 2, 3, seconds)
    warm = len(calls) - 2
    assert len(times) == 2 and np.array_equal(outputs[0], np.ones(2))
    assert warm >= least
    if seconds == 0:
        assert warm == 3  # the calls alone
