"""CPU throughput of a training step against the matmul peak, side by side (`make bench`).

The step (gmgbench.harness.throughput.bare_step: the standard VAE at batch 64, forward, backward and
Adam) in both memory layouts and a float32 1024 × 1024 matmul are timed in turn, round after
round, so the achieved share of the peak is a ratio of two times taken under the same load.
Printed, never asserted; docs/performance.md reports it. One thread, as each worker of
``gmgbench run --workers 2`` runs.
"""
from __future__ import annotations

import os

import pytest
import torch

from gmgbench.harness.throughput import bare_step
from tests.side_by_side import interleaved, ratios

FULL = os.environ.get("GMGBENCH_BENCH_FULL") == "1"
pytestmark = pytest.mark.benchmark_side_by_side


def test_step_share_of_matmul_peak(benchmark, capsys):
    torch.set_num_threads(1)
    n = 1024
    a, b = torch.randn(n, n), torch.randn(n, n)
    steps = {fmt: bare_step(fmt) for fmt in ("contiguous", "channels_last")}
    flops = {fmt: f for fmt, (_, f) in steps.items()}
    assert flops["contiguous"] == flops["channels_last"] > 5e9  # the same arithmetic, ~6.2 GFLOP

    def measure(name):
        import time

        fn = (lambda: a @ b) if name == "matmul" else steps[name][0]
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    for fmt in steps:
        steps[fmt][0]()  # warm-up outside the timing
    times = interleaved(benchmark, measure, ["matmul", *steps], rounds=20 if FULL else 1)
    med = ratios(times, "contiguous")
    peak = 2 * n ** 3 / med["matmul"][0]
    lines = [f"float32 matmul {n}: {peak / 1e9:.0f} GFLOP/s (1 thread)"]
    for fmt in steps:
        rate = flops[fmt] / med[fmt][0]
        lines.append(f"{fmt:14s} {med[fmt][0] * 1e3:6.1f} ms/step  {rate / 1e9:5.1f} GFLOP/s  "
                     f"{100 * rate / peak:4.0f} % of peak  x{med[fmt][1]:.2f} of contiguous")
    with capsys.disabled():
        print("\nbeta-VAE step, batch 64, interleaved medians:\n" + "\n".join(lines))
