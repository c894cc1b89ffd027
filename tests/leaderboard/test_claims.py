"""Claims are judged from the seeds, per dataset, and never asserted beyond them."""
from __future__ import annotations

import pytest
from lb_helpers import make_spec, toy_store

from harness import leaderboard
from harness.leaderboard import LeaderboardError
from harness.leaderboard.claims import judge

CLAIMS = [
    {"claim": "beta beats alpha", "better": "beta", "than": "alpha"},
    {"claim": "gamma beats beta", "better": "gamma", "than": "beta"},
    {"claim": "alpha beats beta", "better": "alpha", "than": "beta"},
]


def _verdicts(tmp_path, **kw):
    spec, store = toy_store(tmp_path, make_spec(leaderboard={"claims": CLAIMS}), **kw)
    board = leaderboard.build(spec, store)
    return {(v.claim.better, v.dataset): v for v in judge(board.agg)}, board


def test_verdicts_follow_the_seeds(tmp_path):
    v, board = _verdicts(tmp_path)
    # ds_a: beta's selected setting (beta=4) 0.5/0.6/0.7 against alpha's 0.1/0.2/0.3:
    # Δ 0.4, Welch's interval 0.4 ± t(0.975, 4)·sqrt(2·0.01/3) = 0.4 ± 0.2267.
    assert v[("beta", "ds_a")].verdict == "supported"
    assert v[("beta", "ds_a")].delta == pytest.approx(0.4)
    assert (v[("beta", "ds_a")].lo, v[("beta", "ds_a")].hi) == pytest.approx((0.4 - 0.22667, 0.4 + 0.22667), abs=1e-4)
    assert v[("alpha", "ds_a")].verdict == "contradicted" and v[("alpha", "ds_a")].hi < 0
    # ds_b: beta's selected setting (beta=1) 0.2/0.4/0.6 against alpha's 0.9/0.8/0.7: Δ −0.4,
    # but three seeds with this spread cannot place it below 0 at 95 % (a bootstrap would).
    assert v[("beta", "ds_b")].verdict == "inconclusive"
    assert v[("beta", "ds_b")].lo < -0.4 < 0 < v[("beta", "ds_b")].hi
    # Overlapping seeds: neither way.
    assert v[("gamma", "ds_a")].verdict == "inconclusive"
    assert v[("gamma", "ds_a")].lo < 0 < v[("gamma", "ds_a")].hi
    md = board.markdown
    assert "## Claims" in md and "| beta beats alpha | ds_a" in md and "**contradicted**" in md
    assert "Welch" in md


def test_welch_interval_matches_scipy():
    import numpy as np
    from scipy import stats

    from harness.leaderboard.claims import welch_interval

    a, b = np.array([0.3, 0.5, 0.45, 0.6]), np.array([0.1, 0.35, 0.2])
    want = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert welch_interval(a, b) == pytest.approx((want.low, want.high), rel=1e-9)
    assert welch_interval(np.array([0.5, 0.5]), np.array([0.2, 0.2, 0.2])) == pytest.approx((0.3, 0.3))


def test_missing_side_is_no_data_and_one_seed_is_inconclusive(tmp_path):
    skip = {("ds_b", "alpha", "beta=1.0", s) for s in (0, 1, 2)} | {("ds_a", "alpha", "beta=1.0", s) for s in (1, 2)}
    v, _ = _verdicts(tmp_path, skip=skip)
    assert v[("beta", "ds_b")].verdict == "no data"
    assert v[("beta", "ds_a")].n_than == 1 and v[("beta", "ds_a")].verdict == "inconclusive"


def test_claims_survive_a_release_rebuild(tmp_path):
    spec, store = toy_store(tmp_path, make_spec(leaderboard={"claims": CLAIMS}))
    vdir = leaderboard.publish(spec, store, figures=False)
    identical, diff = leaderboard.verify(vdir)
    assert identical, diff
    assert "## Claims" in (vdir / "leaderboard.md").read_text()


def test_a_claim_naming_an_unknown_method_is_an_error(tmp_path):
    spec, store = toy_store(tmp_path, make_spec(leaderboard={"claims": [{"claim": "x", "better": "delta", "than": "alpha"}]}))
    with pytest.raises(LeaderboardError, match=r"claims\[0\]\.better: 'delta' is not a method label"):
        leaderboard.build(spec, store)
