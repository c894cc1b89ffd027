import numpy as np
import pytest

from gmgbench import metrics
from gmgbench.metrics.dci import compute_dci
from gmgbench.metrics.dci_fast import compute_dci_fast, dci_fast_from_codes
from metric_cases import SyntheticData, representations


def test_dci_fast_is_its_own_metric_with_dci_keys():
    assert "dci_fast" in metrics.names() and "dci" in metrics.names()
    assert metrics.result_keys("dci_fast") == metrics.result_keys("dci")


# Model-like codes. On degenerate codes the two can differ more, which is why dci_fast is its
# own metric: exact duplicates (GBC splits credit between copies at random, ours gives it to
# the first), see docs/metrics.md.
@pytest.mark.parametrize("rep_name", ["identity", "noisy", "float32_noisy"])
def test_dci_fast_is_close_to_exact_dci(rep_name):
    data = SyntheticData(factor_sizes=(3, 4, 6))
    rep = representations(3, 3)[rep_name]
    fast = compute_dci_fast(data, rep, np.random.RandomState(0), num_train=1500, num_test=500)
    exact = compute_dci(data, rep, np.random.RandomState(0), num_train=1500, num_test=500)
    assert abs(fast["disentanglement"] - exact["disentanglement"]) <= 0.05
    assert abs(fast["completeness"] - exact["completeness"]) <= 0.05
    assert abs(fast["informativeness_test"] - exact["informativeness_test"]) <= 0.05


def test_dci_fast_orders_representations_like_dci():
    data = SyntheticData(factor_sizes=(3, 4, 6))
    reps = representations(3, 3)
    d = {name: compute_dci_fast(data, reps[name], np.random.RandomState(0), num_train=800, num_test=300)
         ["disentanglement"] for name in ("identity", "rotated", "random")}
    assert d["identity"] > 0.9 and d["identity"] > d["rotated"]
    assert d["random"] < 0.5


def test_dci_fast_is_reproducible_and_handles_constant_factor():
    rs = np.random.RandomState(0)
    factors = np.stack([rs.randint(3, size=300), np.zeros(300, dtype=int)], axis=1)
    codes = np.concatenate([factors[:, :1] + 0.1 * rs.randn(300, 1), rs.randn(300, 1)], axis=1)
    a = dci_fast_from_codes(codes[:200], factors[:200], codes[200:], factors[200:], n_jobs=2)
    b = dci_fast_from_codes(codes[:200], factors[:200], codes[200:], factors[200:], n_jobs=1)
    assert a == b
    # Factor 0 is readable from code 0; the constant factor is predicted by its only value.
    assert a["informativeness_test"] > 0.95


def _binned_friendly_case(num_classes):
    rs = np.random.RandomState(num_classes)
    # 3 code dims with ~100 distinct values each (≤ MAX_BINS), two of them informative.
    x = np.round(rs.randn(600, 3) * 20) / 20
    y = np.digitize(x[:, 0] + 0.4 * x[:, 1] + 0.5 * rs.randn(600), np.linspace(-1, 1, num_classes - 1))
    return x, y


def test_with_no_more_values_than_bins_it_is_sklearns_gbc():
    """Where the 255 bins hold every distinct value, the candidate splits are GBC's midpoints
    and the rest is GBC's algorithm: the same trees, importances and accuracies (binary
    factor, 20 stages; later, float32 gradients in the grower start to pick differently
    between near-equal splits)."""
    from sklearn.ensemble import GradientBoostingClassifier

    from gmgbench.metrics.dci_fast import MAX_BINS, _Bins, _fit_factor

    x, y = _binned_friendly_case(2)
    assert max(np.unique(x[:, j]).size for j in range(3)) <= MAX_BINS
    importance, train_acc, test_acc = _fit_factor(_Bins(x[:400], x[400:]), y[:400], y[400:], n_stages=20)
    gbc = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x[:400], y[:400])
    np.testing.assert_allclose(importance, gbc.feature_importances_, rtol=1e-9)
    assert (train_acc, test_acc) == (gbc.score(x[:400], y[:400]), gbc.score(x[400:], y[400:]))


@pytest.mark.parametrize("num_classes", [2, 3, 5])
def test_close_to_sklearns_gbc_where_ties_are_broken_differently(num_classes):
    """Multi-class residuals start two-valued (onehot − prior), so on a coarse grid several
    splits tie exactly; GBC breaks ties by a random feature order, we take the first. The
    importances stay within 0.01."""
    from sklearn.ensemble import GradientBoostingClassifier

    from gmgbench.metrics.dci_fast import importance_hist_gbt

    x, y = _binned_friendly_case(num_classes)
    importance, train_acc, test_acc = importance_hist_gbt(x[:400], y[:400, None], x[400:], y[400:, None], n_jobs=1)
    gbc = GradientBoostingClassifier(random_state=0).fit(x[:400], y[:400])
    np.testing.assert_allclose(importance[:, 0], gbc.feature_importances_, atol=0.01)
    assert train_acc == pytest.approx(gbc.score(x[:400], y[:400]), abs=3 / 400)
    assert test_acc == pytest.approx(gbc.score(x[400:], y[400:]), abs=3 / 200)


def test_parallel_equals_serial_at_sizes_that_use_processes():
    rs = np.random.RandomState(5)
    factors = np.stack([rs.randint(4, size=1500), rs.randint(2, size=1500)], axis=1)
    codes = np.concatenate([factors + 0.3 * rs.randn(1500, 2), rs.randn(1500, 1)], axis=1)
    args = (codes[:1100], factors[:1100], codes[1100:], factors[1100:])
    assert dci_fast_from_codes(*args, n_jobs=2) == dci_fast_from_codes(*args, n_jobs=1)
