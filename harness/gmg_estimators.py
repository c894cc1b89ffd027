"""Compare GMG's estimators on problems with known ground truth and on real training batches.

    python -m harness.gmg_estimators --out docs/figures/gmg_estimators.png

Ground truth (X: n Gaussian points in R^10, Y = T(X)):

- ``isometry``: Y = X R (a rotation): true GW = 0 and true GMG = 0; the true gap is at its
  minimum, so its gradient is 0.
- ``scramble-25`` / ``scramble-50`` / ``permuted``: the rotation with 25 %, 50 % or all of its
  outputs permuted among themselves. Y is still an isometric copy of X, so the true GW = 0 and
  the true GMG = DST; GW is at its minimum too, so the true gap's gradient is ∇DST.
- ``noisy``: the rotation plus Gaussian noise (σ = 0.1): true GMG unknown, in [0, DST].

Measured per estimator (``plain``, ``clipped``, ``debiased``, ``warm``), over ``--draws`` random
draws: the bias (estimate − truth) relative to DST, its spread, the fraction of negative
estimates, and the cosine between the estimator's gradient with respect to Y and the true
gap's (∇DST). Solver settings are the regulariser's training defaults.

Training batches (``dsprites_procedural``, decoder side on the posterior sample, Cos): a
standard VAE trained briefly with β-VAE (β = 4), then each estimator on a few batches: value,
sign, and the cosine of its gradient (w.r.t. the decoded images) with ∇DST and with plain's.
No ground truth there.

Writes the figure, ``<out>.json`` with every row, and prints the tables (markdown).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from methods import ot
from methods.regularisers.gmg import ESTIMATORS, gmg_from_costs

CASES = ("isometry", "scramble-25", "scramble-50", "permuted", "noisy")


def _case(name: str, n: int, d: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, d, generator=gen)
    rot, _ = torch.linalg.qr(torch.randn(d, d, generator=gen))
    y = x @ rot
    if name.startswith("scramble") or name == "permuted":
        frac = 1.0 if name == "permuted" else int(name.split("-")[1]) / 100
        idx = torch.randperm(n, generator=gen)[: max(2, int(frac * n))]
        y = y.clone()
        y[idx] = y[idx[torch.randperm(len(idx), generator=gen)]]
    elif name == "noisy":
        y = y + 0.1 * torch.randn(n, d, generator=gen)
    return x, y


def _estimate(cx: torch.Tensor, y: torch.Tensor, cost: str, eps0: float, estimator: str):
    y = y.detach().clone().requires_grad_(True)
    cy = ot.pairwise_cost(y, cost)
    g, parts = gmg_from_costs(cx, cy, eps0, estimator=estimator)
    (grad,) = torch.autograd.grad(g, y)
    return float(g.detach()), float(parts["dst"].detach()), grad, bool(parts["ok"])


def _dst_grad(cx, y, cost):
    y = y.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ot.distortion(cx, ot.pairwise_cost(y, cost)), y)
    return grad


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return float((a * b).sum()) / (na * nb) if na > 0 and nb > 0 else float("nan")


def synthetic(costs, eps0s, draws: int, n: int, d: int = 10) -> list[dict]:
    rows = []
    for cost in costs:
        for eps0 in eps0s:
            for case in CASES:
                for draw in range(draws):
                    x, y = _case(case, n, d, torch.Generator().manual_seed(1000 * draw + CASES.index(case)))
                    cx = ot.pairwise_cost(x, cost)
                    g_dst = _dst_grad(cx, y, cost)
                    for est in ESTIMATORS:
                        t = time.perf_counter()
                        val, dst, grad, ok = _estimate(cx, y, cost, eps0, est)
                        truth = 0.0 if case == "isometry" else (None if case == "noisy" else dst)
                        rows.append({
                            "cost": cost, "eps0": eps0, "case": case, "draw": draw, "estimator": est,
                            "value": val, "dst": dst, "truth": truth, "ok": ok,
                            "seconds": time.perf_counter() - t,
                            # The true gap's gradient is ∇DST on the scrambles, 0 on the isometry.
                            "grad_cos_true": _cos(grad, g_dst) if case not in ("isometry", "noisy") else None,
                            "grad_norm": float(grad.norm()), "dst_grad_norm": float(g_dst.norm()),
                        })
    return rows


def briefly_trained_vae(steps: int, seed: int = 0):
    """A standard VAE after ``steps`` β-VAE steps (β = 4, Adam 5e-4, batch 64) on
    ``dsprites_procedural``; returns ``(model, dataset, numpy RandomState, torch Generator)``,
    the last two positioned after training. The GW benchmark times its "trained" steps on it."""
    from harness import data
    from methods.architectures import VAE
    from methods.beta_vae import BetaVAE

    torch.manual_seed(seed)
    model = VAE(num_channels=1, latent_dim=10)
    ds = data.load("dsprites_procedural")
    rs = np.random.RandomState(seed)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    objective, gen = BetaVAE(BetaVAE.Config(beta=4.0)), torch.Generator().manual_seed(seed)
    for _ in range(steps):
        out = model(ds.training_batch(ds.sample_factors(64, rs), rs), generator=gen, dataset_size=ds.dataset_size)
        loss, _ = objective(out)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, ds, rs, gen


def training_batches(steps: int, batches: int, eps0: float) -> list[dict]:
    model, ds, rs, gen = briefly_trained_vae(steps)
    rows = []
    for b in range(batches):
        with torch.no_grad():
            out = model(ds.training_batch(ds.sample_factors(64, rs), rs), generator=gen, dataset_size=ds.dataset_size)
        z, img = out.z, torch.sigmoid(out.logits).flatten(1)  # the decoder side on the sample
        cx = ot.pairwise_cost(z, "cos")
        g_dst = _dst_grad(cx, img, "cos")
        grads = {}
        for est in ESTIMATORS:
            val, dst, grads[est], ok = _estimate(cx, img, "cos", eps0, est)
            rows.append({"batch": b, "estimator": est, "value": val, "dst": dst, "ok": ok,
                         "grad_cos_dst": _cos(grads[est], g_dst)})
        for row in rows[-len(ESTIMATORS):]:
            row["grad_cos_plain"] = _cos(grads[row["estimator"]], grads["plain"])
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for (cost, eps0, case, est), g in df.groupby(["cost", "eps0", "case", "estimator"], sort=False):
        # Relative to DST where the truth is DST (the scrambles); on the isometry DST ≈ 0.
        rel = (g["value"] - g["dst"]) / g["dst"] if case not in ("isometry", "noisy") else None
        out.append({
            "cost": cost, "eps0": eps0, "case": case, "estimator": est,
            "DST": g["dst"].mean(), "estimate": g["value"].mean(), "spread (sd)": g["value"].std(ddof=1),
            "bias/DST": None if rel is None else rel.mean(),
            "bias (abs)": None if case == "noisy" else (g["value"] - g["truth"].astype(float)).mean(),
            "negative": (g["value"] < 0).mean(),
            "grad cos(true)": g["grad_cos_true"].astype(float).mean() if case not in ("isometry", "noisy") else None,
            "|grad|": g["grad_norm"].mean(),
            "|∇DST|": g["dst_grad_norm"].mean(),
        })
    return out


def figure(summary: list[dict], train_rows: list[dict], path: Path, eps0s) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = sorted({r["cost"] for r in summary}, key=["l2sq", "scl2sq", "cos"].index)
    cases = [c for c in CASES if c not in ("isometry", "noisy")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    colors = dict(zip(ESTIMATORS, ["C0", "C3", "C2", "C1"]))
    width = 0.8 / len(ESTIMATORS)
    groups = [(c, e, k) for c in costs for e in eps0s for k in cases]
    for ax, key, title in ((axes[0], "bias/DST", "bias / DST on permuted isometries (truth: GMG = DST)"),
                           (axes[1], "grad cos(true)", "cos(∇estimator, ∇true gap = ∇DST)")):
        for i, est in enumerate(ESTIMATORS):
            vals = [next(r[key] for r in summary if (r["cost"], r["eps0"], r["case"], r["estimator"]) == (c, e, k, est))
                    for c, e, k in groups]
            ax.bar(np.arange(len(groups)) + i * width, vals, width, label=est, color=colors[est])
        ax.set_xticks(np.arange(len(groups)) + 0.4 - width / 2)
        ax.set_xticklabels([f"{c} ε0={e}\n{k}" for c, e, k in groups], rotation=90, fontsize=6)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(title, fontsize=9)
    axes[0].legend(fontsize=8)
    ax = axes[2]
    for i, est in enumerate(ESTIMATORS):
        vals = [r["value"] / r["dst"] for r in train_rows if r["estimator"] == est]
        ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, color=colors[est], label=est)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(ESTIMATORS)))
    ax.set_xticklabels(ESTIMATORS)
    ax.set_title("training batches (dSprites twin, decoder on sample, Cos):\nestimate / DST per batch", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/figures/gmg_estimators.png"))
    ap.add_argument("--costs", default="l2sq,scl2sq,cos")
    ap.add_argument("--eps0", default="0.01,0.05")
    ap.add_argument("--draws", type=int, default=4)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--train-steps", type=int, default=300)
    ap.add_argument("--train-batches", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on shared 2-core machines)")
    args = ap.parse_args(argv)
    from tabulate import tabulate

    torch.set_num_threads(args.threads)
    eps0s = [float(e) for e in args.eps0.split(",")]
    rows = synthetic(args.costs.split(","), eps0s, args.draws, args.n)
    summary = summarise(rows)
    train_rows = training_batches(args.train_steps, args.train_batches, 0.01) if args.train_steps >= 0 else []
    figure(summary, train_rows, args.out, eps0s)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                               "summary": summary, "training_batches": train_rows}, indent=1, default=float))
    tmp.replace(args.out.with_suffix(".json"))
    print(tabulate(summary, headers="keys", tablefmt="github", floatfmt=".4g"))
    print()
    print(tabulate(train_rows, headers="keys", tablefmt="github", floatfmt=".4g"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
