"""Claims a study tests: "A beats B on the selection metric", judged per dataset from the seeds.

A study spec lists them under ``leaderboard.claims``::

    claims:
      - {claim: "GMG beats DST (cosine, decoder)", better: beta_vae+gmg_cos_dec, than: beta_vae+dst_cos_dec}

For each claim and dataset the verdict compares the two methods' shown settings on the
judged seeds (see :mod:`gmgbench.harness.leaderboard.options` for the selection protocol):

- ``claims_test: paired`` (default). Runs with the same seed share initialisation and data
  order, so seed-to-seed variation is common to both methods (per-seed DCI is strongly
  correlated across methods). Δ is the mean of the per-seed differences, with the paired
  t-interval (n − 1 degrees of freedom, as ``scipy.stats.ttest_rel``). A seed that one
  side lacks is dropped from the pairing, and the board says how many pairs were used.
- ``claims_test: welch``: Δ is the difference of the two means, with Welch's t-interval
  (unequal variances, Welch–Satterthwaite degrees of freedom), for unpaired designs.
- ``claims_correction: holm`` (default): the two-sided p-values of every comparison of the
  board (claims × datasets) get Holm's step-down correction, so the chance of any false
  verdict stays at 5 %. ``none``: each comparison at 5 % on its own.

``supported`` / ``contradicted``: the (corrected) p-value is below 0.05 and Δ is above /
below 0, which implies the 95 % interval shown lies wholly on that side. Otherwise
``inconclusive``; fewer than three pairs (seeds per side for Welch) give ``insufficient
pairs`` (``insufficient seeds``) and take no part in the correction; differences with no
spread give a zero-width interval, which is never evidence by itself: ``inconclusive``.
A side without values gives ``no data``. A verdict never asserts more than the seeds show.

Why not the bootstrap the ranks use: with the 3 seeds of a small study a percentile
bootstrap of the means has 10 distinct values per side and ignores the t-quantile, so its
interval is far too narrow (at 3 seeds against 3 it called a difference "supported" whose
t-interval is twice as wide and crosses 0).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from gmgbench.harness.leaderboard import power
from gmgbench.harness.leaderboard.options import MIN_PAIRS, Claim, parse_claims

__all__ = ["Claim", "parse_claims", "judge", "Verdict", "welch_interval", "welch_test", "paired_test", "holm", "ALPHA"]

ALPHA = 0.05


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    dataset: str
    delta: float  # paired: mean of (better − than) per seed; welch: mean(better) − mean(than); > 0 favours the claim
    lo: float  # the 95 % interval of delta, uncorrected
    hi: float
    n_better: int  # seeds with a value on each side
    n_than: int
    verdict: str  # supported | contradicted | inconclusive | insufficient pairs | insufficient seeds | no data
    n_pairs: int = 0  # seeds both sides have (paired); 0 for welch
    p: float = math.nan  # two-sided p-value of delta = 0
    p_adj: float = math.nan  # after the correction across the board's comparisons (= p without one)
    sd: float = math.nan  # paired: sample sd of the per-seed differences (what the power depends on)
    family: int = 1  # comparisons the correction spreads α over (Holm's first step tests at α/family)

    @property
    def mde(self) -> float:
        """The |Δ| this comparison detects with 80 % power at its pairs, sd and family (paired only;
        see :mod:`gmgbench.harness.leaderboard.power`)."""
        return power.mde(self.sd, self.n_pairs, self.family, ALPHA) if self.n_pairs >= 2 else math.nan

    @property
    def pairs_needed(self) -> int | None:
        """Pairs a decisive verdict at the observed |Δ| would need (80 % power, sd as observed)."""
        return power.pairs_needed(abs(self.delta), self.sd, self.family, ALPHA, at_least=MIN_PAIRS)

    @property
    def dropped(self) -> int:
        """Seeds with a value on one side only, left out of the pairing."""
        return self.n_better + self.n_than - 2 * self.n_pairs


def _side(agg, ds: str, label: str, sel: str, sign: int) -> pd.Series:
    """The shown setting's judged values of ``label`` on ``ds``, by seed (sign: higher favours)."""
    board = agg.board
    shown = board[(board["dataset"] == ds) & (board["method"] == label)]
    if shown.empty:
        return pd.Series(dtype=float)
    runs = agg.judged
    mask = ((runs["status"] == "done") & (runs["dataset"] == ds) & (runs["method"] == label)
            & (runs["setting"] == shown.iloc[0]["setting"]))
    sub = runs.loc[mask, ["seed", sel]].dropna()
    return pd.Series(sign * sub[sel].to_numpy(float), index=sub["seed"].to_numpy()).sort_index()


def judge(agg) -> list[Verdict]:
    """Every claim of ``agg.options.claims`` on every dataset of the study, corrected together."""
    opts = agg.options
    sel, sign = opts.selection, (opts.direction(opts.selection) or 1)
    raw = []
    for claim in opts.claims:
        for ds in agg.datasets:
            a, b = _side(agg, ds, claim.better, sel, sign), _side(agg, ds, claim.than, sel, sign)
            raw.append(_compare(claim, ds, a, b, opts.claims_test, legacy=opts.text_version < 2))
    tested = [i for i, v in enumerate(raw) if math.isfinite(v.p)]
    adjusted = holm([raw[i].p for i in tested]) if opts.claims_correction == "holm" else [raw[i].p for i in tested]
    family = len(tested) if opts.claims_correction == "holm" else 1
    out = [replace(v, family=max(family, 1)) for v in raw]
    for i, p_adj in zip(tested, adjusted):
        v = out[i]
        verdict = ("supported" if v.delta > 0 else "contradicted") if p_adj < ALPHA else "inconclusive"
        out[i] = replace(v, verdict=verdict, p_adj=float(p_adj))
    return out


def _compare(claim: Claim, ds: str, a: pd.Series, b: pd.Series, test: str, legacy: bool = False) -> Verdict:
    """One comparison before any correction (``verdict`` is final unless ``p`` is finite).

    ``legacy``: releases of the first wording judged Welch from two seeds per side and
    took a zero-width interval as it was; they rebuild with that rule.
    """
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        return Verdict(claim, ds, math.nan, math.nan, math.nan, na, nb, "no data")
    if test == "paired":
        common = a.index.intersection(b.index)
        n = len(common)
        if n == 0:
            return Verdict(claim, ds, math.nan, math.nan, math.nan, na, nb, "no data")
        x, y = a.loc[common].to_numpy(float), b.loc[common].to_numpy(float)
        delta = float(np.mean(x - y))
        if n < MIN_PAIRS:
            return Verdict(claim, ds, delta, math.nan, math.nan, na, nb, "insufficient pairs", n)
        lo, hi, p = paired_test(x, y)
        sd = float(np.std(x - y, ddof=1))
        if not math.isfinite(p):  # identical differences: a zero-width interval is no evidence by itself
            return Verdict(claim, ds, delta, lo, hi, na, nb, "inconclusive", n, sd=sd)
        return Verdict(claim, ds, delta, lo, hi, na, nb, "inconclusive", n, p, p, sd=sd)
    x, y = a.to_numpy(float), b.to_numpy(float)
    delta = float(x.mean() - y.mean())
    if min(na, nb) < (2 if legacy else MIN_PAIRS):
        return Verdict(claim, ds, delta, math.nan, math.nan, na, nb, "inconclusive" if legacy else "insufficient seeds")
    lo, hi, p = welch_test(x, y)
    if legacy:
        verdict = "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
        return Verdict(claim, ds, delta, lo, hi, na, nb, verdict)
    if _flat(x) and _flat(y):
        return Verdict(claim, ds, delta, lo, hi, na, nb, "inconclusive")
    return Verdict(claim, ds, delta, lo, hi, na, nb, "inconclusive", 0, p, p)


def paired_test(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(lo, hi, p)``: the paired t-interval of ``mean(a − b)`` and the two-sided p-value of
    a zero mean difference (``scipy.stats.ttest_rel``); ``a[i]`` and ``b[i]`` share a seed.

    Differences without spread give the point itself and p = NaN (the t statistic is 0/0
    or ±inf, neither of which is evidence).
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if _flat(d, scale=max(np.abs(a).max(), np.abs(b).max())):
        mean = float(d.mean())
        return mean, mean, math.nan
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(level)
    return float(ci.low), float(ci.high), float(res.pvalue)


def _flat(x: np.ndarray, scale: float | None = None) -> bool:
    """No spread beyond rounding: ``0.5 − 0.1`` and ``0.7 − 0.3`` differ in the last bit, and
    a t statistic built on that would call any such difference certain."""
    scale = float(np.abs(x).max()) if scale is None else float(scale)
    return float(np.std(x)) <= 1e-9 * max(scale, 1.0)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given): the i-th smallest of m
    p-values becomes ``max_{j ≤ i} min(1, (m − j + 1) · p_(j))``. Rejecting where the
    adjusted value is below α keeps the family-wise error rate at α."""
    p = np.asarray(list(pvalues), float)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [float(x) for x in adjusted]


def welch_test(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(lo, hi, p)``: Welch's ``level`` t-interval for ``mean(a) − mean(b)`` and the two-sided
    p-value of no difference (as ``scipy.stats.ttest_ind(equal_var=False)``, which warns on
    a side whose values are all equal); each side needs two values.

    Two sides without spread give the point itself and p = NaN (the runs are deterministic).
    """
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    delta, se = float(a.mean() - b.mean()), math.sqrt(va + vb)
    if se == 0:
        return delta, delta, math.nan
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return delta - half, delta + half, float(2 * stats.t.sf(abs(delta) / se, df))


def welch_interval(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Welch's ``level`` t-interval for ``mean(a) − mean(b)`` (see :func:`welch_test`)."""
    lo, hi, _ = welch_test(a, b, level)
    return lo, hi
