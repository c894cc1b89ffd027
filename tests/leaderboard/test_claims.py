"""Claims are judged from the seeds, per dataset, corrected together, and never asserted beyond them."""
from __future__ import annotations

import math

import numpy as np
import pytest
from lb_helpers import fill, make_spec, toy_store
from scipy import stats

from gmgbench.harness import leaderboard
from gmgbench.harness.leaderboard import LeaderboardError, power
from gmgbench.harness.leaderboard.claims import holm, judge, paired_test, welch_interval, welch_test
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec

CLAIMS = [
    {"claim": "beta beats alpha", "better": "beta", "than": "alpha"},
    {"claim": "gamma beats beta", "better": "gamma", "than": "beta"},
    {"claim": "alpha beats beta", "better": "alpha", "than": "beta"},
]
WELCH = {"claims_test": "welch", "claims_correction": "none"}


def _verdicts(tmp_path, lb=None, **kw):
    spec, store = toy_store(tmp_path, make_spec(leaderboard={"claims": CLAIMS, **(lb or {})}), **kw)
    board = leaderboard.build(spec, store)
    return {(v.claim.better, v.dataset): v for v in judge(board.agg)}, board


def test_welch_verdicts_follow_the_seeds(tmp_path):
    v, board = _verdicts(tmp_path, WELCH)
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
    assert v[("beta", "ds_a")].p == pytest.approx(stats.ttest_ind([.5, .6, .7], [.1, .2, .3], equal_var=False).pvalue)
    md = board.markdown
    assert "## Claims" in md and "| beta beats alpha | ds_a" in md and "**contradicted**" in md
    assert "**Welch's** (unpaired)" in md and "not corrected for the 6 comparisons" in md
    assert "- **Claims**: Welch's t-interval (unpaired), not corrected for multiple comparisons" in md


def test_welch_interval_matches_scipy():
    a, b = np.array([0.3, 0.5, 0.45, 0.6]), np.array([0.1, 0.35, 0.2])
    want = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert welch_interval(a, b) == pytest.approx((want.low, want.high), rel=1e-9)
    assert welch_interval(np.array([0.5, 0.5]), np.array([0.2, 0.2, 0.2])) == pytest.approx((0.3, 0.3))
    res = stats.ttest_ind(a, b, equal_var=False)
    assert welch_test(a, b) == pytest.approx((*res.confidence_interval(0.95), res.pvalue), rel=1e-9)


def test_paired_interval_matches_ttest_rel_and_a_hand_computation():
    a, b = np.array([0.31, 0.52, 0.45, 0.66, 0.2]), np.array([0.1, 0.35, 0.38, 0.5, 0.21])
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(0.95)
    assert paired_test(a, b) == pytest.approx((ci.low, ci.high, res.pvalue), rel=1e-12)
    # By hand: differences 0.1, 0.2, 0.3 → mean 0.2, sd 0.1, se 0.1/√3, t(0.975, 2) = 4.302653;
    # t = 0.2/(0.1/√3) = 3.4641 on 2 df, two-sided p = 0.07417.
    lo, hi, p = paired_test(np.array([0.4, 0.6, 0.9]), np.array([0.3, 0.4, 0.6]))
    assert (lo, hi) == pytest.approx((0.2 - 4.302653 * 0.1 / math.sqrt(3), 0.2 + 4.302653 * 0.1 / math.sqrt(3)), abs=1e-6)
    assert p == pytest.approx(0.074180, abs=1e-5)


def test_identical_differences_are_a_point_with_no_p_value():
    # 0.5 − 0.1 and 0.7 − 0.3 differ in the last bit; t would be ~1e16 and p ~ 0.
    lo, hi, p = paired_test(np.array([0.5, 0.6, 0.7]), np.array([0.1, 0.2, 0.3]))
    assert lo == pytest.approx(0.4) and hi == pytest.approx(0.4) and math.isnan(p)


def test_holm_matches_a_hand_computation():
    # Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → max so far 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # 0.5·2 = 1.0 (capped at 1), then 0.9·1 = 0.9 is raised to the running maximum 1.0.
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([0.04]) == pytest.approx([0.04])
    assert holm([]) == []


# Five seeds whose level varies far more between seeds than between methods (as DCI does):
# "high" is "low" + 0.05 on every seed, up to a little noise.
LEVEL = [0.1, 0.5, 0.3, 0.8, 0.6]
NOISE = [0.004, -0.003, 0.001, 0.0, -0.002]


def _paired_spec(lb=None, seeds=(0, 1, 2, 3, 4)):
    methods = (MethodSpec("low", "vae", {"beta": 1.0}), MethodSpec("high", "beta_vae", {"beta": 1.0}),
               MethodSpec("same", "beta_vae", {"beta": 2.0}))
    claims = [{"claim": "high beats low", "better": "high", "than": "low"},
              {"claim": "same beats low", "better": "same", "than": "low"}]
    return make_spec(datasets=("ds_a",), seeds=seeds, methods=methods, leaderboard={"claims": claims, **(lb or {})})


def _paired_values(run):
    v = LEVEL[run.seed] + {"low": 0.0, "high": 0.05 + NOISE[run.seed], "same": 0.01 * (-1) ** run.seed}[run.method]
    return {"dci.disentanglement": v}


def _paired_board(tmp_path, lb=None, **kw):
    spec = _paired_spec(lb)
    store = fill(ResultsStore(tmp_path / "results"), spec, _paired_values, **kw)
    board = leaderboard.build(spec, store)
    return {v.claim.better: v for v in judge(board.agg)}, board


def test_paired_claims_pair_runs_by_seed(tmp_path):
    v, board = _paired_board(tmp_path)
    high = np.array([LEVEL[s] + 0.05 + NOISE[s] for s in range(5)])
    res = stats.ttest_rel(high, np.array(LEVEL))
    ci = res.confidence_interval(0.95)
    h = v["high"]
    assert (h.lo, h.hi) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert h.p == pytest.approx(res.pvalue, rel=1e-9) and h.n_pairs == 5 and h.dropped == 0
    assert h.delta == pytest.approx(0.05)
    # Holm across the two comparisons: "same" (p ≈ 0.8) does not dilute a p of ~1e-5 enough.
    assert h.p_adj == pytest.approx(2 * res.pvalue, rel=1e-9) and h.verdict == "supported"
    assert v["same"].verdict == "inconclusive"
    # The same numbers as independent samples: the seed-to-seed spread swamps the 0.05.
    w, _ = _paired_board(tmp_path / "w", {"claims_test": "welch"})
    assert w["high"].verdict == "inconclusive" and w["high"].lo < 0 < w["high"].hi
    md = board.markdown
    assert "the test is **paired**" in md and "**Holm-corrected** across the 2 comparisons" in md
    assert "- **Claims**: paired t-interval on per-seed differences, Holm-corrected across the board's comparisons" in md
    line = next(x for x in md.splitlines() if x.startswith("| high beats low"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[4] == "5" and cells[-2:] == ["< 0.001", "**supported**"]
    # Its power columns: the sd of the per-seed differences, the MDE at 5 pairs in a Holm family
    # of 2, and the pairs 80 % power at the observed 0.05 would need (harness/leaderboard/power.py).
    assert h.sd == pytest.approx(float(np.std(high - np.array(LEVEL), ddof=1)), rel=1e-9) and h.family == 2
    assert cells[5:8] == [f"{h.sd:.3f}", f"{power.mde(h.sd, 5, 2):.3f}", str(power.pairs_needed(0.05, h.sd, 2))]
    assert "**What these seeds could detect.**" in md and "α/2 = 0.025 two-sided (5 pairs: |t₄| ≥" in md


def test_unpaired_seeds_are_dropped_and_counted(tmp_path):
    skip = {("ds_a", "low", "beta=1.0", 3)}
    v, board = _paired_board(tmp_path, skip=skip)
    h = v["high"]
    assert (h.n_better, h.n_than, h.n_pairs, h.dropped) == (5, 4, 4, 1)
    seeds = [0, 1, 2, 4]
    high = np.array([LEVEL[s] + 0.05 + NOISE[s] for s in seeds])
    low = np.array([LEVEL[s] for s in seeds])
    res = stats.ttest_rel(high, low)
    assert (h.lo, h.hi, h.p) == pytest.approx((*res.confidence_interval(0.95), res.pvalue), rel=1e-9)
    assert "4 (1 unpaired dropped)" in board.markdown


def test_fewer_than_three_pairs_is_insufficient_and_outside_the_correction(tmp_path):
    skip = {("ds_a", "low", "beta=1.0", s) for s in (2, 3, 4)}
    v, board = _paired_board(tmp_path, skip=skip)
    assert v["high"].verdict == v["same"].verdict == "insufficient pairs"
    assert v["high"].n_pairs == 2 and math.isnan(v["high"].p_adj) and math.isnan(v["high"].lo)
    assert "across the 0 comparisons" in board.markdown


def test_holm_turns_a_marginal_claim_inconclusive(tmp_path):
    # Three claims on one dataset with raw p of about 0.03 each: each passes alone, none
    # passes Holm (0.03 · 3 > 0.05).
    methods = (MethodSpec("base", "vae", {"beta": 1.0}),) + tuple(
        MethodSpec(f"m{i}", "beta_vae", {"beta": float(i + 1)}) for i in range(3))
    claims = [{"claim": f"m{i} beats base", "better": f"m{i}", "than": "base"} for i in range(3)]
    diffs = [0.10, 0.13, 0.07]  # paired differences per seed: mean 0.1, sd 0.03 → p ≈ 0.029

    def values(run):
        d = 0.0 if run.method == "base" else diffs[run.seed] + 0.001 * int(run.method[1])
        return {"dci.disentanglement": LEVEL[run.seed] + d}

    out = {}
    for corr in ("holm", "none"):
        spec = make_spec(datasets=("ds_a",), methods=methods,
                         leaderboard={"claims": claims, "claims_correction": corr})
        store = fill(ResultsStore(tmp_path / corr), spec, values)
        out[corr] = judge(leaderboard.build(spec, store).agg)
    raw = [v.p for v in out["none"]]
    assert all(0.05 / 3 < p < 0.05 for p in raw)
    assert [v.verdict for v in out["none"]] == ["supported"] * 3
    assert [v.p_adj for v in out["holm"]] == pytest.approx(holm(raw))
    assert [v.verdict for v in out["holm"]] == ["inconclusive"] * 3


def test_identical_differences_are_never_supported(tmp_path):
    # ds_a: beta (0.5/0.6/0.7) minus alpha (0.1/0.2/0.3) is 0.4 on every seed: a zero-width
    # interval, which the paired test must not call certain.
    v, board = _verdicts(tmp_path)
    b = v[("beta", "ds_a")]
    assert b.verdict == "inconclusive" and b.lo == pytest.approx(b.hi) == pytest.approx(0.4)
    assert math.isnan(b.p) and b.n_pairs == 3


def test_missing_side_is_no_data_and_one_seed_is_insufficient(tmp_path):
    skip = {("ds_b", "alpha", "beta=1.0", s) for s in (0, 1, 2)} | {("ds_a", "alpha", "beta=1.0", s) for s in (1, 2)}
    v, _ = _verdicts(tmp_path, skip=skip)
    assert v[("beta", "ds_b")].verdict == "no data"
    assert v[("beta", "ds_a")].n_than == 1 and v[("beta", "ds_a")].verdict == "insufficient pairs"
    w, _ = _verdicts(tmp_path / "w", WELCH, skip=skip)
    assert w[("beta", "ds_a")].verdict == "insufficient seeds"


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


@pytest.mark.parametrize("lb, match", [
    ({"claims_test": "anova"}, r"leaderboard\.claims_test: expected one of paired, welch, got 'anova'"),
    ({"claims_test": 1}, r"leaderboard\.claims_test: expected str"),
    ({"claims_correction": "bonferroni"}, r"leaderboard\.claims_correction: expected one of holm, none"),
])
def test_bad_claims_settings_name_the_key(tmp_path, lb, match):
    spec, store = toy_store(tmp_path)
    with pytest.raises(LeaderboardError, match=match):
        leaderboard.build(make_spec(leaderboard={"claims": CLAIMS, **lb}), store)


def test_paired_claims_need_methods_that_share_the_seeded_stream(tmp_path):
    m = make_spec().methods
    other = MethodSpec("beta", "beta_vae", {"beta": [1.0, 4.0]}, train={"batch_size": 32})
    spec = make_spec(methods=(m[0], other, m[2]), leaderboard={"claims": CLAIMS})
    with pytest.raises(LeaderboardError, match=r"claims\[0\]: beta and alpha train with different batch_size "
                                               r"\(32 vs 64\).*claims_test: welch"):
        leaderboard.Options.from_spec(spec)
    leaderboard.Options.from_spec(make_spec(methods=(m[0], other, m[2]), leaderboard={"claims": CLAIMS, **WELCH}))
