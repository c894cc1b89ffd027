"""The paper's Figure 2 toy: fit a map from a Gaussian mixture to a larger target, + DST or + GMG.

A small MLP ``T: R² → R²`` pushes a 4-component Gaussian mixture (asymmetric layout) onto
the same mixture made 3× larger and turned by 90°. Loss = fitting loss (energy distance
between ``T(x)`` and target samples) + λ·reg, reg = DST or GMG with the L2² cost, λ = 1. A
fitting loss alone matches the laws but may send clusters to the wrong places (it does for
seed 1, not for seed 0). DST asks T to keep distances, which the scale change forbids, so it
keeps the shape by not fitting; GMG only asks T to be close to a distortion-optimal map, and
a similarity is one, so it can fit and keep the layout.

Numbers printed (and checked by tests/methods/test_gmg_toy.py):
- ``fit``: energy distance between the fitted ``T#r`` and the target (lower is better);
- ``distortion``: scale-free distortion, DST with each cost matrix divided by its mean
  (``scl2sq``), of the fitted map on held-out source points (0 for a similarity transform);
- ``knn``: fraction of each held-out point's 8 nearest neighbours kept by the map.

Run: ``python -m gmgbench.methods.toys.figure2 [--out docs/figures/figure2_toy.png] [--steps 400]``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gmgbench.methods.ot import distortion, pairwise_cost
from gmgbench.methods.regularisers.gmg import gmg_from_costs

__all__ = ["ToyResult", "fit_map", "run", "main"]

DEFAULT_OUT = Path("docs/figures/figure2_toy.png")


# Four clusters in an asymmetric layout, so that no permutation of them is an isometry.
_CENTRES = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.6], [1.2, 1.0]])
_CENTRES = _CENTRES - _CENTRES.mean(0)
_ROT90 = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
SCALE = 3.0


def mixture(n: int, gen: torch.Generator) -> torch.Tensor:
    """The source r: a 4-component Gaussian mixture (std 0.07)."""
    comp = torch.randint(0, 4, (n,), generator=gen)
    return _CENTRES[comp] + 0.07 * torch.randn(n, 2, generator=gen)


def target(n: int, gen: torch.Generator) -> torch.Tensor:
    """The target: the same mixture, 3× larger and turned by 90°."""
    return SCALE * mixture(n, gen) @ _ROT90.T


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``2E‖x−y‖ − E‖x−x'‖ − E‖y−y'‖`` (≥ 0, 0 iff equal laws); a fitting loss with no solver."""
    def mean_dist(a, b):
        return (torch.cdist(a, b) + 0).mean()
    return 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y)


def knn_kept(x: torch.Tensor, y: torch.Tensor, k: int = 8) -> float:
    def nn_idx(p):
        d = torch.cdist(p, p)
        d.fill_diagonal_(float("inf"))
        return d.topk(k, largest=False).indices
    a, b = nn_idx(x), nn_idx(y)
    kept = (a.unsqueeze(-1) == b.unsqueeze(-2)).any(-1).float().mean()
    return float(kept)


@dataclass(frozen=True)
class ToyResult:
    reg: str
    fit: float
    distortion: float
    knn: float
    source: torch.Tensor
    image: torch.Tensor


def fit_map(reg: str, *, steps: int = 400, lam: float = 1.0, n: int = 64, epsilon0: float = 0.01,
            seed: int = 0) -> ToyResult:
    """Train the toy map with ``reg`` in {"none", "dst", "gmg"} and measure it."""
    if reg not in ("none", "dst", "gmg"):
        raise ValueError(f"reg must be 'none', 'dst' or 'gmg', got {reg!r}")
    torch.manual_seed(seed)
    lam = float(lam)
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        x, tgt = mixture(n, gen), target(n, gen)
        y = net(x)
        loss = energy_distance(y, tgt)
        if reg != "none":
            cx, cy = pairwise_cost(x, "l2sq"), pairwise_cost(y, "l2sq")
            term = distortion(cx, cy) if reg == "dst" else gmg_from_costs(cx, cy, epsilon0)[0]
            loss = loss + lam * term
        opt.zero_grad()
        loss.backward()
        opt.step()
    held = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        x = mixture(512, held)
        y = net(x)
        fit = float(energy_distance(y, target(512, held)))
        dist = float(distortion(pairwise_cost(x, "scl2sq"), pairwise_cost(y, "scl2sq")))
    return ToyResult(reg, fit, dist, knn_kept(x, y), x, y)


def run(steps: int = 400, out: Path | None = DEFAULT_OUT, seed: int = 1) -> dict[str, ToyResult]:
    results = {reg: fit_map(reg, steps=steps, seed=seed) for reg in ("none", "dst", "gmg")}
    if out is not None:
        _plot(results, Path(out), seed)
    return results


def _plot(results: dict[str, ToyResult], out: Path, seed: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
    src = results["gmg"].source
    colour = torch.atan2(src[:, 1], src[:, 0])  # the mixture's component, by angle
    tgt = target(512, torch.Generator().manual_seed(seed))
    axes[0].scatter(src[:, 0], src[:, 1], c=colour, s=4, cmap="hsv")
    axes[0].set_title("source: Gaussian mixture")
    for ax, reg in zip(axes[1:], ("none", "dst", "gmg")):
        r = results[reg]
        ax.scatter(tgt[:, 0], tgt[:, 1], s=2, c="0.85")
        ax.scatter(r.image[:, 0], r.image[:, 1], c=colour, s=4, cmap="hsv")
        label = {"none": "fit only", "dst": "fit + DST", "gmg": "fit + GMG"}[reg]
        ax.set_title(f"{label}\nfit {r.fit:.3f}  distortion {r.distortion:.3f}  kNN {r.knn:.2f}", fontsize=9)
    for ax in axes:
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"Figure 2 toy (seed {seed}): target = source mixture ×3, turned 90° (grey); colour = source angle", fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m gmgbench.methods.toys.figure2", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write (default: %(default)s)")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--seed", type=int, default=1, help="1 (default): a seed where the fit alone scrambles the clusters")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    results = run(args.steps, args.out, args.seed)
    print(f"{'method':<10} {'fit':>8} {'distortion':>11} {'kNN kept':>9}")
    for reg, r in results.items():
        print(f"{reg:<10} {r.fit:8.4f} {r.distortion:11.4f} {r.knn:9.3f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
