"""Step time of each objective/regulariser we own relative to a β-VAE step, side by side.

``make bench`` (or ``GMGBENCH_BENCH_FULL=1``) runs the study size, batch 64 with 7
interleaved repetitions, and prints the ratios that docs/methods.md quotes; the default
test run uses batch 8 and one repetition, so it only checks that the comparison runs.
"""
from __future__ import annotations

import os
import time

import pytest
import torch
from side_by_side import interleaved, ratios

from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import call_checked, update_checked

FULL = os.environ.get("GMGBENCH_BENCH_FULL") == "1"
CONFIGS = {
    "beta_vae": ("beta_vae", {}, []),
    "beta_tcvae": ("beta_tcvae", {}, []),
    "factor_vae": ("factor_vae", {}, []),  # with its discriminator's own step (update)
    "dip_vae_i": ("dip_vae_i", {}, []),
    "dip_vae_ii": ("dip_vae_ii", {}, []),
    "annealed_vae": ("annealed_vae", {}, []),
    "beta_vae+hfs": ("beta_vae", {}, [("hfs", {})]),
    "beta_vae+hfs(all pairs)": ("beta_vae", {}, [("hfs", {"num_pairs": 0})]),
    "beta_vae+jacobian(decoder)": ("beta_vae", {}, [("jacobian", {})]),
    "beta_vae+jacobian(encoder)": ("beta_vae", {}, [("jacobian", {"side": "encoder"})]),
}


def _steps(batch: int):
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = (torch.rand(batch, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    noise = torch.Generator().manual_seed(0)
    terms = {k: (registry.build(o, "objective", p), [registry.build(n, "regulariser", q) for n, q in r])
             for k, (o, p, r) in CONFIGS.items()}
    for obj, _ in terms.values():
        obj.setup(10, torch.device("cpu"))

    def step(name: str) -> float:
        obj, regs = terms[name]
        t0 = time.perf_counter()
        out = model(x, generator=noise, dataset_size=737280)
        loss, _ = call_checked(obj, out)
        for reg in regs:
            term, _ = call_checked(reg, out)
            loss = loss + reg.cfg.weight * term
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        update_checked(obj, out)
        return time.perf_counter() - t0

    return step


@pytest.mark.benchmark_side_by_side
def test_step_time_relative_to_beta_vae(benchmark):
    batch, reps = (64, 7) if FULL else (8, 1)
    step = _steps(batch)
    for name in CONFIGS:  # warm-up (first forward-mode call compiles decompositions)
        step(name)
    times = interleaved(benchmark, step, CONFIGS, rounds=reps)
    print(f"\nstep time at batch {batch}, {torch.get_num_threads()} thread(s), relative to beta_vae:")
    for name, (med, ratio) in ratios(times, "beta_vae").items():
        print(f"  {name:28s} {1000 * med:8.1f} ms  {ratio:5.2f}x")
    assert all(len(ts) == reps for ts in times.values())
