"""Claims a study tests: "A beats B on the selection metric", judged per dataset from the seeds.

A study spec lists them under ``leaderboard.claims``::

    claims:
      - {claim: "GMG beats DST (cosine, decoder)", better: beta_vae+gmg_cos_dec, than: beta_vae+dst_cos_dec}

For each claim and dataset the verdict compares the two methods' selected settings: the
difference of mean selection metric, with a 95 % bootstrap interval that resamples each
method's seeds independently (``options.bootstrap`` draws, ``options.bootstrap_seed``).
``supported`` needs the whole interval on the claimed side, ``contradicted`` the whole
interval on the other; anything else is ``inconclusive``, and a side without values is
``no data``. A verdict never asserts more than the seeds show.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Claim", "parse_claims", "judge", "Verdict"]


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
    rng = np.random.default_rng(opts.bootstrap_seed)
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
            draws = (a[rng.integers(0, len(a), size=(opts.bootstrap, len(a)))].mean(1)
                     - b[rng.integers(0, len(b), size=(opts.bootstrap, len(b)))].mean(1))
            lo, hi = np.percentile(draws, [2.5, 97.5])
            delta = float(a.mean() - b.mean())
            verdict = "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
            if min(len(a), len(b)) < 2:
                verdict = "inconclusive"  # one seed has no spread to judge by
            verdicts.append(Verdict(claim, ds, delta, float(lo), float(hi), len(a), len(b), verdict))
    return verdicts
