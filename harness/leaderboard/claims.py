"""Claims a study tests: "A beats B on the selection metric", judged per dataset from the seeds.

A study spec lists them under ``leaderboard.claims``::

    claims:
      - {claim: "GMG beats DST (cosine, decoder)", better: beta_vae+gmg_cos_dec, than: beta_vae+dst_cos_dec}

For each claim and dataset the verdict compares the two methods' selected settings: the
difference of mean selection metric, with Welch's 95 % t-interval (unequal variances,
Welch–Satterthwaite degrees of freedom). ``supported`` needs the whole interval on the
claimed side, ``contradicted`` the whole interval on the other; anything else is
``inconclusive``, a side with fewer than two seeds is always ``inconclusive``, and a side
without values is ``no data``. A verdict never asserts more than the seeds show.

Why not the bootstrap the ranks use: with the 3 seeds of a small study a percentile
bootstrap of the means has 10 distinct values per side and ignores the t-quantile, so its
interval is far too narrow (at 3 seeds against 3 it called a difference "supported" whose
t-interval is twice as wide and crosses 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

__all__ = ["Claim", "parse_claims", "judge", "Verdict", "welch_interval"]


class _Error(ValueError):
    pass


@dataclass(frozen=True)
class Claim:
    claim: str
    better: str
    than: str


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    dataset: str
    delta: float  # mean(better) − mean(than), signed so that > 0 favours the claim
    lo: float
    hi: float
    n_better: int
    n_than: int
    verdict: str  # supported | contradicted | inconclusive | no data


def parse_claims(raw: Any, where: str, labels: list[str]) -> tuple[Claim, ...]:
    """``leaderboard.claims`` → Claims; errors name the key and list the method labels."""
    from harness.leaderboard.aggregate import LeaderboardError

    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise LeaderboardError(f"{where}.claims: expected a list of {{claim, better, than}}, got {raw!r}")
    claims = []
    for i, entry in enumerate(raw):
        key = f"{where}.claims[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"claim", "better", "than"}:
            raise LeaderboardError(f"{key}: expected exactly the keys claim, better, than; got {entry!r}")
        for side in ("better", "than"):
            if entry[side] not in labels:
                raise LeaderboardError(f"{key}.{side}: {entry[side]!r} is not a method label of this study; "
                                       f"labels: {', '.join(labels)}")
        claims.append(Claim(str(entry["claim"]), str(entry["better"]), str(entry["than"])))
    return tuple(claims)


def judge(agg) -> list[Verdict]:
    """Every claim of ``agg.options.claims`` on every dataset of the study."""
    opts = agg.options
    sel, sign = opts.selection, (opts.direction(opts.selection) or 1)
    board = agg.board
    done = agg.runs[agg.runs["status"] == "done"]
    verdicts = []
    for claim in opts.claims:
        for ds in agg.datasets:
            values = []
            for label in (claim.better, claim.than):
                shown = board[(board["dataset"] == ds) & (board["method"] == label)]
                if shown.empty:
                    values.append(np.zeros(0))
                    continue
                setting = shown.iloc[0]["setting"]
                mask = (done["dataset"] == ds) & (done["method"] == label) & (done["setting"] == setting)
                values.append(sign * done.loc[mask, sel].dropna().to_numpy(float))
            a, b = values
            if len(a) == 0 or len(b) == 0:
                verdicts.append(Verdict(claim, ds, math.nan, math.nan, math.nan, len(a), len(b), "no data"))
                continue
            delta = float(a.mean() - b.mean())
            if min(len(a), len(b)) < 2:  # one seed has no spread to judge by
                verdicts.append(Verdict(claim, ds, delta, math.nan, math.nan, len(a), len(b), "inconclusive"))
                continue
            lo, hi = welch_interval(a, b)
            verdict = "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
            verdicts.append(Verdict(claim, ds, delta, float(lo), float(hi), len(a), len(b), verdict))
    return verdicts


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Welch's ``level`` t-interval for ``mean(a) − mean(b)``; each side needs two values.

    Two sides without spread give the point itself (the runs are deterministic).
    """
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    delta, se = float(a.mean() - b.mean()), math.sqrt(va + vb)
    if se == 0:
        return delta, delta
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return delta - half, delta + half
