"""What measuring regulariser health costs a training step, side by side (target ≤ 3 %).

The measurement runs at one step in ``health_every`` (default 50): one extra backward of the
regulariser's graph (``torch.autograd.grad`` on the retained graph) and a few norms. Blocks of
``every`` steps with and without it are interleaved, so load on a shared machine hits both
alike, and the ratio of their medians is the amortised overhead.

``GMGBENCH_BENCH_FULL=1`` runs the study size (batch 64, ``every`` = 50, 5 repetitions) and
prints the ratio docs/methods.md quotes; the default test run uses batch 8, ``every`` = 4 and
one repetition, so it only checks that the comparison runs.
"""
from __future__ import annotations

import os
import statistics
import time

import pytest
import torch
from side_by_side import interleaved

from gmgbench.harness.health import HealthMonitor
from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import call_checked

FULL = os.environ.get("GMGBENCH_BENCH_FULL") == "1"
REGULARISER = ("gmg", {"cost": "cos", "side": "decoder", "use_mean": False, "estimator": "plain", "weight": 1000.0})


def _block(batch: int, every: int):
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=10)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    x = (torch.rand(batch, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    noise = torch.Generator().manual_seed(0)
    objective = registry.build("beta_vae", "objective", {})
    reg = registry.build(REGULARISER[0], "regulariser", REGULARISER[1])

    def block(measure: bool) -> float:
        """``every`` steps of the training loop; with ``measure``, health at the first one."""
        monitor = HealthMonitor([reg.name], [reg.cfg.weight], every if measure else 0)
        t0 = time.perf_counter()
        for step in range(every):
            out = model(x, generator=noise, dataset_size=737280)
            loss, _ = call_checked(objective, out)
            term, _ = call_checked(reg, out)
            loss = loss + reg.cfg.weight * term
            grads = monitor.term_grads([term], params) if monitor.due(step) else None
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if grads is not None:
                monitor.record_grads(step, grads, params)
            monitor.record_values([float(term.detach())], float(loss.detach()))
            opt.step()
        return time.perf_counter() - t0

    return block


@pytest.mark.benchmark_side_by_side
def test_health_overhead_per_step(benchmark):
    batch, every, reps = (64, 50, 5) if FULL else (8, 4, 1)
    block = _block(batch, every)
    block(False)  # warm-up
    times = interleaved(benchmark, block, (False, True), rounds=reps)
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    print(f"\nhealth every {every} steps, batch {batch}, {torch.get_num_threads()} thread(s): "
          f"{ratio:.3f}x a step without it ({1000 * statistics.median(times[False]) / every:.1f} ms/step)")
    assert len(times[True]) == len(times[False]) == reps
