"""The claims' forest plot: each claim's per-seed differences, its mean with the 95 % interval
the verdict rests on, and the band of differences its seeds could not detect (± MDE)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from gmgbench.harness.leaderboard.aggregate import Aggregate
from gmgbench.harness.leaderboard.claims import _side, judge
from gmgbench.harness.leaderboard import figures

__all__ = ["forest_plot"]


def forest_plot(agg: Aggregate, out_dir: Path) -> dict[str, Any] | None:
    """One row per claim × dataset with pairs (paired claims only); None when there is none."""
    o = agg.options
    if not o.claims or o.claims_test != "paired":
        return None
    sel, sign = o.selection, (o.direction(o.selection) or 1)
    rows = []
    for v in judge(agg):
        if v.n_pairs < 2:
            continue
        a, b = _side(agg, v.dataset, v.claim.better, sel, sign), _side(agg, v.dataset, v.claim.than, sel, sign)
        common = a.index.intersection(b.index)
        rows.append((v, (a.loc[common] - b.loc[common]).to_numpy(float)))
    if not rows:
        return None
    n = len(rows)
    fig = figures._figure(9.0, 1.6 + 0.45 * n)
    ax = fig.add_subplot(1, 1, 1)
    for i, (v, diffs) in enumerate(rows):
        y = n - 1 - i
        mde = v.mde
        if math.isfinite(mde):
            ax.fill_betweenx([y - 0.35, y + 0.35], -mde, mde, color="0.88", lw=0, zorder=1,
                             label="± MDE (80 % power): not detectable with these seeds")
        jitter = np.linspace(-0.12, 0.12, len(diffs)) if len(diffs) > 1 else np.zeros(1)
        ax.scatter(diffs, y + 0.2 + jitter, s=14, color="0.4", zorder=3, label="one seed's difference")
        if math.isfinite(v.lo):
            ax.errorbar([v.delta], [y], xerr=[[v.delta - v.lo], [v.hi - v.delta]], fmt="o",
                        color="C3" if v.verdict in ("supported", "contradicted") else "C0", ms=5, capsize=4, lw=1.8,
                        zorder=4, label="Δ, 95 % interval (uncorrected)")
        else:
            ax.scatter([v.delta], [y], marker="o", color="C0", zorder=4)
    ax.axvline(0.0, color="0.2", lw=0.8)
    ax.set_yticks(range(n))
    ax.set_yticklabels([f"{v.claim.claim} · {v.dataset} ({v.verdict})" for v, _ in reversed(rows)], fontsize=7)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel(f"Δ {sel} per seed: claimed better − other (> 0 favours the claim)")
    ax.grid(axis="x", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    fig.legend(uniq.values(), uniq.keys(), fontsize=7, loc="outside lower center", ncols=2)
    fig.suptitle("Claims: paired differences on the judged seeds, with interval and MDE", fontsize=10)
    path = out_dir / "claims-forest.png"
    figures._save(fig, path)  # looked up at call time, like every figure's save
    return {"path": f"figures/{path.name}", "kind": "claims", "dataset": None,
            "caption": "Each claim's per-seed differences (dots), Δ with its 95 % interval, and the band ± MDE "
                       "inside which a true difference would be missed more than 20 % of the time"}
