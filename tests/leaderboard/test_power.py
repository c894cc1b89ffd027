"""Claim power: the minimum detectable effect and the seed plan, checked against the project's
known numbers and against an independent Monte-Carlo simulation of the paired t-test."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from gmgbench.harness.cli import main
from gmgbench.harness.leaderboard import power

REPO = Path(__file__).resolve().parents[2]


def test_cpu_repro_v2_known_check():
    # 4 pairs, Holm over 8 claims: the first rejection needs |t3| >= 6.90, i.e. mean/sd >= 3.45.
    tc = power.critical_t(4, family=8)
    assert tc == pytest.approx(6.895, abs=5e-3) and tc / 2 == pytest.approx(3.45, abs=5e-3)
    # Power for a true difference of 0.05 at the observed sd ~0.037: about 10 %.
    assert 0.07 < power.power(0.05, 0.037, 4, family=8) < 0.12
    # With no effect the test rejects at its level, α/8.
    assert power.power(0.0, 1.0, 4, family=8) == pytest.approx(0.05 / 8, rel=1e-6)


def _simulated(delta: float, sd: float, n: int, family: int, draws: int, rng) -> float:
    """Share of simulated studies (n normal per-seed differences) the paired t-test rejects at α/family."""
    d = rng.normal(delta, sd, size=(draws, n))
    p = stats.ttest_1samp(d, 0.0, axis=1).pvalue
    return float(np.mean(p < 0.05 / family))


@pytest.mark.parametrize("n,sd,family", [(4, 0.037, 8), (6, 0.05, 1), (10, 0.02, 4)])
def test_power_and_mde_agree_with_a_monte_carlo_simulation(n, sd, family):
    """The noncentral-t power against 40,000 simulated studies (seeded, so deterministic). The
    tolerance is 4.5 binomial standard errors of the simulated share (≤ 0.01 here): a wrong
    degrees of freedom, a one-sided test or a missing Holm factor moves power by far more."""
    rng = np.random.default_rng(12345)
    draws = 40_000
    mde = power.mde(sd, n, family)
    for delta in (0.5 * mde, mde):
        expected = power.power(delta, sd, n, family)
        seen = _simulated(delta, sd, n, family, draws, rng)
        se = math.sqrt(expected * (1 - expected) / draws)
        assert abs(seen - expected) < 4.5 * se, (delta, seen, expected)
    assert power.power(mde, sd, n, family) == pytest.approx(0.8, abs=1e-9)


def test_mde_scales_with_sd_and_shrinks_with_pairs():
    assert power.mde(0.074, 4, 8) == pytest.approx(2 * power.mde(0.037, 4, 8), rel=1e-9)
    assert power.mde(0.037, 20, 8) < power.mde(0.037, 10, 8) < power.mde(0.037, 4, 8)
    assert math.isnan(power.mde(0.037, 1, 8)) and math.isnan(power.mde(0.0, 4, 8))


def test_pairs_needed_is_the_first_n_with_80_percent_power():
    n = power.pairs_needed(0.05, 0.037, family=8)
    assert power.power(0.05, 0.037, n, 8) >= 0.8 > power.power(0.05, 0.037, n - 1, 8)
    assert power.pairs_needed(0.0, 0.037) is None and power.pairs_needed(1e-6, 1.0) is None  # > MAX_PAIRS


def test_power_plan_from_a_published_release(capsys):
    assert main(["leaderboard", "--power", str(REPO / "leaderboards/cpu-repro/v2"), "--effect", "0.05"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "DST improves beta-VAE" in x and "dsprites_procedural" in x)
    cells = [c.strip() for c in line.strip("|").split("|")]
    sd = float(cells[3])
    assert cells[2] == "4" and cells[4] == "8"
    assert float(cells[5]) == pytest.approx(power.mde(sd, 4, 8), rel=5e-3)
    assert float(cells[8]) == pytest.approx(power.power(0.05, sd, 4, 8), rel=5e-3)


def test_power_plan_refuses_a_release_without_paired_claims_in_one_line(capsys):
    release = REPO / "leaderboards/gmg-mechanism/v3"  # a study without claims
    assert main(["leaderboard", "--power", str(release)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(release) in err and "no claims" in err
    assert main(["leaderboard", "--power", str(REPO / "leaderboards/cpu-repro/v2"), "--pairs", "1"]) == 2
