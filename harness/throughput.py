"""How much of the CPU a training step uses: achieved GFLOP/s against the measured matmul peak.

    python -m gmgbench.harness.throughput studies/cpu-repro.yaml [--methods beta_vae,...] [--steps 60]

For each chosen method of the study (seed 0, its first grid point) and each dataset, it trains
a real run (``gmgbench.harness.train.train_run``: data, health measurement and logging included) in
every memory layout (``train.memory_format``) and thread layout (one run on one thread, one run
on all threads, one run per core side by side, as ``gmgbench run --workers N`` does), and
reports the median milliseconds per step, GFLOP per step (``torch.utils.flop_counter``: convolutions and
matrix products, forward and backward) and the share of the float32 matmul peak measured the
same way (one thread; all threads; one process per core side by side). ``--compile`` adds a
``torch.compile`` comparison of the bare β-VAE step. Printed as a markdown table; the figures
and the command are in docs/performance.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path

__all__ = ["matmul_peak", "bare_step", "step_flops", "step_seconds", "main"]


def matmul_peak(n: int = 1024, reps: int = 15) -> float:
    """Best float32 ``n × n`` matmul rate of this process, in GFLOP/s (torch's current threads)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


def _with(run, steps: int, memory_format: str):
    train = dataclasses.replace(run.train, steps=steps, memory_format=memory_format, checkpoint_every=10 ** 9,
                                log_every=min(run.train.log_every, steps))
    return dataclasses.replace(run, train=train)


def step_flops(run, steps: int = 4) -> float:
    """Floating-point operations of one training step of ``run`` (mean over ``steps``)."""
    from torch.utils.flop_counter import FlopCounterMode

    from gmgbench.harness.train import train_run

    with tempfile.TemporaryDirectory() as tmp, FlopCounterMode(display=False) as counter:
        train_run(_with(run, steps, "contiguous"), Path(tmp), progress=False)
    return counter.get_total_flops() / steps


def step_seconds(run, steps: int, memory_format: str, threads: int) -> float:
    """Median seconds per step of a fresh ``steps``-step training of ``run`` on ``threads``
    threads. The median (after 5 warm-up steps) rather than the mean, so that a burst of
    another process's work moves it little; the health measurement's steps (every
    ``train.health_every``) are the slow tail it leaves out."""
    import torch

    from gmgbench.harness.train import train_run

    torch.set_num_threads(threads)
    marks: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        train_run(_with(run, steps, memory_format), Path(tmp), progress=False,
                  on_step=lambda _step: marks.append(time.perf_counter()))
    return statistics.median(b - a for a, b in zip(marks[5:], marks[6:]))


def _side_by_side(fn, args: tuple, workers: int) -> list:
    """``fn(*args)`` in ``workers`` fresh processes started together (one per core)."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        return pool.starmap(_one_thread, [(fn, args)] * workers)


def _one_thread(fn, args):
    import torch

    torch.set_num_threads(1)
    return fn(*args)


def bare_step(memory_format: str = "contiguous", compiled: bool = False, channels: int = 1):
    """One β-VAE training step of the standard VAE at batch 64 (no data, health or logging) as
    a callable, and its FLOPs: the model's share of a step, timed side by side with the matmul
    peak in tests/harness/test_bench_throughput.py."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from gmgbench.methods.architectures import VAE

    layout = torch.channels_last if memory_format == "channels_last" else torch.contiguous_format
    torch.manual_seed(0)
    model = VAE(channels, 10).to(memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = (torch.rand(64, channels, 64, 64) > 0.5).float().contiguous(memory_format=layout)
    enc, dec = (torch.compile(model.encoder), torch.compile(model.decoder)) if compiled else (model.encoder, model.decoder)

    def step():
        mu, logvar = enc(x).chunk(2, 1)
        logits = dec(mu + torch.randn_like(mu) * torch.exp(0.5 * logvar))
        kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1).mean()
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 64 + kl
        opt.zero_grad()
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    return step, counter.get_total_flops()


def _compiled_step_ms(compiled: bool, reps: int = 30) -> float:
    step, _ = bare_step("channels_last", compiled)
    for _ in range(5):  # the compile itself happens here
        step()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    from tabulate import tabulate

    from gmgbench.harness.spec import load_spec

    p = argparse.ArgumentParser(prog="python -m gmgbench.harness.throughput", description=__doc__.split("\n")[0])
    p.add_argument("study")
    p.add_argument("--methods", help="comma-separated method labels (default: all of the study's)")
    p.add_argument("--datasets", help="comma-separated dataset names (default: all of the study's)")
    p.add_argument("--steps", type=int, default=60, help="steps per timed training (default 60)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes side by side (default: cores)")
    p.add_argument("--compile", action="store_true", help="also time the bare step under torch.compile")
    args = p.parse_args(argv)

    import torch

    spec = load_spec(args.study)
    labels = args.methods.split(",") if args.methods else [m.label for m in spec.methods]
    names = args.datasets.split(",") if args.datasets else [d for d, _ in spec.datasets]
    runs = [r for r in spec.runs() if r.seed == spec.seeds[0] and r.method in labels and r.dataset in names]
    firsts = {}
    for r in runs:  # the first grid point of each method on each dataset
        firsts.setdefault((r.method, r.dataset), r)

    torch.set_num_threads(1)
    peak1 = matmul_peak()
    torch.set_num_threads(args.workers)
    peak_all = matmul_peak()
    peak_side = sum(_side_by_side(matmul_peak, (), args.workers))
    print(f"float32 matmul peak (n = 1024): 1 thread {peak1:.0f} GFLOP/s; {args.workers} threads {peak_all:.0f}; "
          f"{args.workers} processes x 1 thread side by side {peak_side:.0f} (sum)\n")

    rows = []
    for (label, dataset), run in firsts.items():
        flop = step_flops(run)
        for fmt in ("contiguous", "channels_last"):
            one = step_seconds(run, args.steps, fmt, 1)
            many = step_seconds(run, args.steps, fmt, args.workers)
            side = _side_by_side(step_seconds, (run, args.steps, fmt, 1), args.workers)
            side_rate = sum(flop / s for s in side) / 1e9
            rows.append([label, dataset, f"{flop / 1e9:.2f}", fmt,
                         f"{one * 1e3:.0f} ms, {flop / one / 1e9:.0f} ({100 * flop / one / 1e9 / peak1:.0f} %)",
                         f"{many * 1e3:.0f} ms, {flop / many / 1e9:.0f} ({100 * flop / many / 1e9 / peak_all:.0f} %)",
                         f"{statistics.mean(side) * 1e3:.0f} ms, {side_rate:.0f} ({100 * side_rate / peak_side:.0f} %)"])
    print(tabulate(rows, tablefmt="github", headers=[
        "method", "dataset", "GFLOP/step", "layout", "1 run x 1 thread: ms/step, GFLOP/s (% peak)",
        f"1 run x {args.workers} threads", f"{args.workers} runs x 1 thread side by side (sum)"]))
    if args.compile:
        torch.set_num_threads(1)
        eager, compiled = _compiled_step_ms(False), _compiled_step_ms(True)
        print(f"\nbare beta-VAE step, channels_last, 1 thread: eager {eager:.0f} ms, "
              f"torch.compile {compiled:.0f} ms (after compiling)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
