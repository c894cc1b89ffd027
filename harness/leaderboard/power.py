"""How much a paired claim could detect: power, minimum detectable effect, seeds to plan.

A verdict of "inconclusive" reads as "no difference" unless the board says how large a
difference its seeds could have found. For a claim judged by the paired t-test on ``n``
per-seed differences with standard deviation ``sd``, inside a Holm family of ``m``
comparisons at family-wise level α:

- the first rejection Holm can make needs p < α/m, so a claim can only be called when
  ``|t| = |mean|/(sd/√n) ≥ t_{1−α/(2m), n−1}`` (cpu-repro v2: n = 4, m = 8 → t₃ = 6.90,
  mean/sd ≥ 3.45). That level is the most lenient any claim of the family meets, so every
  number below is the best case for a claim;
- **power** at a true mean difference Δ is P(|T| ≥ t_crit) with T noncentral t, n − 1
  degrees of freedom and noncentrality Δ·√n/sd (``scipy.stats.nct``; statsmodels'
  ``TTestPower`` computes the same thing);
- the **minimum detectable effect** (MDE) is the Δ whose power is 80 %;
- the **design** is the smallest n whose power at a given Δ reaches 80 %, assuming the sd
  stays what it was (the same computation runs before training, from an earlier release's
  sd: ``gmgbench leaderboard --power RELEASE``).

The sd is the observed one, itself uncertain with few pairs: these are planning figures,
not guarantees.
"""
from __future__ import annotations

import math

from scipy import optimize, stats

__all__ = ["POWER", "critical_t", "power", "mde", "pairs_needed", "MAX_PAIRS", "fmt"]

POWER = 0.8
MAX_PAIRS = 1000  # a design search stops here: "more than 1000 pairs" is answer enough


def critical_t(n: int, family: int = 1, alpha: float = 0.05) -> float:
    """The |t| a paired test on ``n`` pairs must reach at Holm's first step (level α/family, two-sided)."""
    if n < 2:
        return math.inf
    return float(stats.t.ppf(1 - alpha / (2 * max(family, 1)), n - 1))


def power(delta: float, sd: float, n: int, family: int = 1, alpha: float = 0.05) -> float:
    """Probability that the paired t-test on ``n`` pairs rejects at level α/family (two-sided)
    when the per-seed differences have mean ``delta`` and standard deviation ``sd``."""
    if n < 2 or not (math.isfinite(sd) and sd > 0 and math.isfinite(delta)):
        return math.nan
    tc = critical_t(n, family, alpha)
    nc = abs(delta) * math.sqrt(n) / sd
    df = n - 1
    # The lower tail as the upper tail of −T: scipy's nct.cdf far in the tail returns NaN at
    # some noncentralities (scipy 1.17), its sf does not.
    return float(stats.nct.sf(tc, df, nc) + stats.nct.sf(tc, df, -nc))


def mde(sd: float, n: int, family: int = 1, alpha: float = 0.05, target: float = POWER) -> float:
    """The smallest |Δ| detected with probability ``target`` (NaN when it cannot be computed)."""
    if n < 2 or not (math.isfinite(sd) and sd > 0):
        return math.nan
    # Power grows with Δ from ≈ α/family at 0; bracket the root by doubling.
    hi = sd
    while power(hi, sd, n, family, alpha) < target:
        hi *= 2
        if hi > 1e6 * sd:
            return math.inf
    return float(optimize.brentq(lambda d: power(d, sd, n, family, alpha) - target, 0.0, hi, xtol=1e-12 * sd))


def pairs_needed(delta: float, sd: float, family: int = 1, alpha: float = 0.05, target: float = POWER,
                 at_least: int = 2) -> int | None:
    """The fewest pairs (≥ ``at_least``) whose power at ``delta`` reaches ``target``; None beyond
    :data:`MAX_PAIRS` or when Δ is 0 or undefined."""
    if not (math.isfinite(delta) and delta != 0 and math.isfinite(sd) and sd > 0):
        return None
    n = max(at_least, 2)
    while n <= MAX_PAIRS:
        if power(delta, sd, n, family, alpha) >= target:
            return n
        n += 1
    return None



def fmt(x: float | None) -> str:
    """Three significant digits, ``—`` when undefined (the plan's table)."""
    return "—" if x is None or not math.isfinite(x) else f"{x:.3g}"
