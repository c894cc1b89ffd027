"""GMG's estimators on problems with known ground truth, and on a few batches of a briefly
trained VAE: ``python -m gmgbench.harness.gmg_estimators`` (docs/gw.md quotes its tables).

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
No ground truth there; :mod:`~gmgbench.harness.gmg_estimators.training` is the study that
has a reference on such batches.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from gmgbench.methods import ot
from gmgbench.methods.regularisers.gmg import ESTIMATORS, gmg_from_costs

__all__ = ["CASES", "synthetic", "briefly_trained_vae", "training_batches", "summarise", "figure", "cosine"]

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


def _estimate(cx: torch.Tensor, y: torch.Tensor, cost: str, epsilon0: float, estimator: str):
    y = y.detach().clone().requires_grad_(True)
    cy = ot.pairwise_cost(y, cost)
    g, parts = gmg_from_costs(cx, cy, epsilon0, estimator=estimator)
    (grad,) = torch.autograd.grad(g, y)
    return float(g.detach()), float(parts["dst"].detach()), grad, bool(parts["ok"])


def _dst_grad(cx, y, cost):
    y = y.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ot.distortion(cx, ot.pairwise_cost(y, cost)), y)
    return grad


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    na, nb = float(a.norm()), float(b.norm())
    return float((a * b).sum()) / (na * nb) if na > 0 and nb > 0 else float("nan")


def synthetic(costs, epsilon0s, draws: int, n: int, d: int = 10) -> list[dict]:
    rows = []
    for cost in costs:
        for epsilon0 in epsilon0s:
            for case in CASES:
                for draw in range(draws):
                    x, y = _case(case, n, d, torch.Generator().manual_seed(1000 * draw + CASES.index(case)))
                    cx = ot.pairwise_cost(x, cost)
                    g_dst = _dst_grad(cx, y, cost)
                    for est in ESTIMATORS:
                        t = time.perf_counter()
                        val, dst, grad, ok = _estimate(cx, y, cost, epsilon0, est)
                        truth = 0.0 if case == "isometry" else (None if case == "noisy" else dst)
                        rows.append({
                            "cost": cost, "epsilon0": epsilon0, "case": case, "draw": draw, "estimator": est,
                            "value": val, "dst": dst, "truth": truth, "ok": ok,
                            "seconds": time.perf_counter() - t,
                            # The true gap's gradient is ∇DST on the scrambles, 0 on the isometry.
                            "grad_cos_true": cosine(grad, g_dst) if case not in ("isometry", "noisy") else None,
                            "grad_norm": float(grad.norm()), "dst_grad_norm": float(g_dst.norm()),
                        })
    return rows


def briefly_trained_vae(steps: int, seed: int = 0):
    """A standard VAE after ``steps`` β-VAE steps (β = 4, Adam 5e-4, batch 64) on
    ``dsprites_procedural``; returns ``(model, dataset, numpy RandomState, torch Generator)``,
    the last two positioned after training. The GW benchmark times its "trained" steps on it."""
    from gmgbench.harness import data
    from gmgbench.methods.architectures import VAE
    from gmgbench.methods.beta_vae import BetaVAE

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


def training_batches(steps: int, batches: int, epsilon0: float) -> list[dict]:
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
            val, dst, grads[est], ok = _estimate(cx, img, "cos", epsilon0, est)
            rows.append({"batch": b, "estimator": est, "value": val, "dst": dst, "ok": ok,
                         "grad_cos_dst": cosine(grads[est], g_dst)})
        for row in rows[-len(ESTIMATORS):]:
            row["grad_cos_plain"] = cosine(grads[row["estimator"]], grads["plain"])
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for (cost, epsilon0, case, est), g in df.groupby(["cost", "epsilon0", "case", "estimator"], sort=False):
        # Relative to DST where the truth is DST (the scrambles); on the isometry DST ≈ 0.
        rel = (g["value"] - g["dst"]) / g["dst"] if case not in ("isometry", "noisy") else None
        out.append({
            "cost": cost, "epsilon0": epsilon0, "case": case, "estimator": est,
            "DST": g["dst"].mean(), "estimate": g["value"].mean(), "spread (sd)": g["value"].std(ddof=1),
            "bias/DST": None if rel is None else rel.mean(),
            "bias (abs)": None if case == "noisy" else (g["value"] - g["truth"].astype(float)).mean(),
            "negative": (g["value"] < 0).mean(),
            "grad cos(true)": g["grad_cos_true"].astype(float).mean() if case not in ("isometry", "noisy") else None,
            "|grad|": g["grad_norm"].mean(),
            "|∇DST|": g["dst_grad_norm"].mean(),
        })
    return out


def figure(summary: list[dict], train_rows: list[dict], path: Path, epsilon0s) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    costs = sorted({r["cost"] for r in summary}, key=["l2sq", "scl2sq", "cos"].index)
    cases = [c for c in CASES if c not in ("isometry", "noisy")]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    colors = dict(zip(ESTIMATORS, ["C0", "C3", "C2", "C1", "C4"]))
    width = 0.8 / len(ESTIMATORS)
    groups = [(c, e, k) for c in costs for e in epsilon0s for k in cases]
    for ax, key, title in ((axes[0], "bias/DST", "bias / DST on permuted isometries (truth: GMG = DST)"),
                           (axes[1], "grad cos(true)", "cos(∇estimator, ∇true gap = ∇DST)")):
        for i, est in enumerate(ESTIMATORS):
            vals = [next(r[key] for r in summary if (r["cost"], r["epsilon0"], r["case"], r["estimator"]) == (c, e, k, est))
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
