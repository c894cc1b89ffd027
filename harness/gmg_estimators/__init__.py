"""Compare GMG's estimators on problems with known ground truth and on real training batches.

    python -m gmgbench.harness.gmg_estimators --out docs/figures/gmg_estimators.png     # known ground truth
    python -m gmgbench.harness.gmg_estimators training                                  # training batches

The first is :mod:`~gmgbench.harness.gmg_estimators.ground_truth` (permuted isometries, whose
true gap is known, and a few batches of a briefly trained VAE); the second (issue 25) is
:mod:`~gmgbench.harness.gmg_estimators.training` (real training batches against a
multi-start reference). This module owns the two commands: their options, the figure, the
``<out>.json`` with every row (atomic), and the markdown tables docs/gw.md quotes. ``--epsilon0``
(also ``--eps0``) lists the ε0 values, GMG's own setting under its own name.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from gmgbench.harness import fileio
from gmgbench.harness.gmg_estimators.ground_truth import figure, summarise, synthetic, training_batches
from gmgbench.harness.gmg_estimators.training import summarise_training, training_figure, training_regime

__all__ = ["main", "main_training"]


def _write_json(out: Path, payload: dict) -> None:
    fileio.atomic_write_text(out.with_suffix(".json"), json.dumps(payload, indent=1, default=float))


def _epsilon0s(text: str) -> list[float]:
    return [float(e) for e in text.split(",")]


def main_training(argv=None) -> int:
    """``python -m gmgbench.harness.gmg_estimators training``: the training-regime study (docs/gw.md)."""
    ap = argparse.ArgumentParser(prog="python -m gmgbench.harness.gmg_estimators training",
                                 description="GMG's estimators on real training batches against a multi-start reference")
    ap.add_argument("--out", type=Path, default=Path("docs/figures/gmg_estimators_training.png"))
    ap.add_argument("--costs", default="l2sq,scl2sq,cos")
    ap.add_argument("--epsilon0", "--eps0", dest="epsilon0", default="0.005,0.01,0.05,0.1")
    ap.add_argument("--steps", default="100,400", help="snapshot steps of each short training")
    ap.add_argument("--batches", type=int, default=2, help="batches per snapshot")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared 2-core machines)")
    args = ap.parse_args(argv)
    from tabulate import tabulate

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows = training_regime([int(s) for s in args.steps.split(",")], args.batches, args.costs.split(","),
                           _epsilon0s(args.epsilon0))
    summary = summarise_training(rows)
    training_figure(summary, args.out)
    _write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "summary": summary,
                           "seconds": time.perf_counter() - t0})
    print(tabulate(summary, headers="keys", tablefmt="github", floatfmt=".3g"))
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return 0


def main(argv=None) -> int:
    """``python -m gmgbench.harness.gmg_estimators [training]``: the ground-truth study, or the
    training-regime one (:func:`main_training`)."""
    ap = argparse.ArgumentParser(prog="python -m gmgbench.harness.gmg_estimators", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/figures/gmg_estimators.png"))
    ap.add_argument("--costs", default="l2sq,scl2sq,cos")
    ap.add_argument("--epsilon0", "--eps0", dest="epsilon0", default="0.01,0.05")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--train-batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared 2-core machines)")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["training"]:
        return main_training(argv[1:])
    args = ap.parse_args(argv)
    from tabulate import tabulate

    torch.set_num_threads(args.threads)
    epsilon0s = _epsilon0s(args.epsilon0)
    rows = synthetic(args.costs.split(","), epsilon0s, args.draws, args.n)
    summary = summarise(rows)
    train_rows = training_batches(args.train_steps, args.train_batches, 0.01) if args.train_steps >= 0 else []
    figure(summary, train_rows, args.out, epsilon0s)
    _write_json(args.out, {"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                           "summary": summary, "training_batches": train_rows})
    print(tabulate(summary, headers="keys", tablefmt="github", floatfmt=".4g"))
    print()
    print(tabulate(train_rows, headers="keys", tablefmt="github", floatfmt=".4g"))
    return 0
