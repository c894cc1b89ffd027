import numpy as np
import pytest

import metrics
from metrics.dci import compute_dci
from metrics.dci_fast import compute_dci_fast, dci_fast_from_codes
from metric_cases import SyntheticData, representations


def test_dci_fast_is_its_own_metric_with_dci_keys():
    assert "dci_fast" in metrics.names() and "dci" in metrics.names()
    assert metrics.result_keys("dci_fast") == metrics.result_keys("dci")


# Model-like codes. On degenerate codes the two differ more, which is why dci_fast is its own
# metric: exact duplicates (GBC splits credit between copies at random, HistGradientBoosting
# gives it to the first) and noise-free rotated lattices (C 0.26 vs 0.07), see docs/metrics.md.
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


@pytest.mark.parametrize("num_classes", [2, 5])
def test_importance_replays_the_boosting_exactly(num_classes):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.tree import DecisionTreeRegressor

    from metrics.dci_fast import _replay

    rs = np.random.RandomState(0)
    x = rs.randn(300, 3)
    y = np.digitize(x[:, 0] + 0.3 * rs.randn(300), np.linspace(-1, 1, num_classes - 1))
    model = HistGradientBoostingClassifier(max_iter=10, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1,
                                           early_stopping=False).fit(x, y)
    importance, raw = _replay(model, x, y)
    # The replayed raw predictions are the model's: the gradients the trees saw are right.
    np.testing.assert_allclose(raw, model._raw_predict(x), rtol=1e-9, atol=1e-9)
    assert importance.sum() == pytest.approx(1.0) and np.argmax(importance) == 0
    # One split on one feature: its decrease is sklearn's regression-tree impurity decrease.
    g = rs.randn(300)
    stump = DecisionTreeRegressor(max_depth=1).fit(x[:, :1], g)
    left = x[:, 0] <= stump.tree_.threshold[0]
    decrease = g[left].sum() ** 2 / left.sum() + g[~left].sum() ** 2 / (~left).sum() - g.sum() ** 2 / 300
    assert decrease / 300 == pytest.approx(stump.tree_.compute_feature_importances(normalize=False)[0], rel=1e-9)


@pytest.mark.parametrize("num_classes", [2, 7])
def test_train_accuracy_from_the_replay_is_the_models(num_classes):
    from sklearn.ensemble import HistGradientBoostingClassifier

    from metrics.dci_fast import _fit_factor

    rs = np.random.RandomState(1)
    x = rs.randn(400, 4)
    y = np.digitize(x[:, 1] + 0.8 * rs.randn(400), np.linspace(-1, 1, num_classes - 1))
    _, train_acc, test_acc = _fit_factor(x, y, x[:100], y[:100], seed=3)
    model = HistGradientBoostingClassifier(learning_rate=0.1, max_iter=100, max_depth=3, max_leaf_nodes=None,
                                           min_samples_leaf=1, early_stopping=False, random_state=3).fit(x, y)
    assert train_acc == np.mean(model.predict(x) == y)
    assert test_acc == np.mean(model.predict(x[:100]) == y[:100])


def test_importance_equals_a_brute_force_replay():
    """Every split's impurity decrease recomputed point by point, tree by tree, in plain Python."""
    from scipy.special import softmax
    from sklearn.ensemble import HistGradientBoostingClassifier

    from metrics.dci_fast import impurity_importance

    rs = np.random.RandomState(2)
    x = rs.randn(120, 3)
    y = np.digitize(x[:, 0] + 0.5 * x[:, 2] + 0.3 * rs.randn(120), [-0.5, 0.5])
    model = HistGradientBoostingClassifier(max_iter=6, max_depth=3, max_leaf_nodes=None, min_samples_leaf=1,
                                           early_stopping=False).fit(x, y)
    onehot = np.eye(3)[np.searchsorted(model.classes_, y)]
    raw = np.tile(model._baseline_prediction.reshape(1, -1), (len(x), 1))
    want = np.zeros(3)
    for trees in model._predictors:
        gradient = softmax(raw, axis=1) - onehot
        for k, tree in enumerate(trees):
            nodes = tree.nodes

            def visit(i, members):
                node = nodes[i]
                if node["is_leaf"]:
                    raw[members, k] += node["value"]
                    return
                go_left = x[members, node["feature_idx"]] <= node["num_threshold"]
                left, right = members[go_left], members[~go_left]
                g, gl, gr = gradient[members, k].sum(), gradient[left, k].sum(), gradient[right, k].sum()
                want[node["feature_idx"]] += max(gl ** 2 / len(left) + gr ** 2 / len(right) - g ** 2 / len(members), 0)
                visit(node["left"], left)
                visit(node["right"], right)

            visit(0, np.arange(len(x)))
    np.testing.assert_allclose(impurity_importance(model, x, y), want / want.sum(), rtol=1e-10)
