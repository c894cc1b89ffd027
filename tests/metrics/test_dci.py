import numpy as np
import pytest

from gmgbench import metrics
from gmgbench.metrics.dci import completeness, compute_dci, dci_from_codes, disentanglement, importance_gbt
from gmgbench.metrics.mig import compute_mig
from metric_cases import SyntheticData, SyntheticWithNuisance, dsprites_moments, representations
from dlib_reference import dlib

REPS = list(representations(4, 3))
# dlib's trees break ties with draws from the global NumPy RNG; ours make the same draws from
# RandomState(tree_seed), so seeding dlib's global RNG alike must give identical numbers.


@pytest.fixture(scope="module")
def dlib_dci():
    return dlib("evaluation.metrics.dci")


def _dlib_dci(mod, data, rep, seed, tree_seed, **kw):
    np.random.seed(tree_seed)
    return mod.compute_dci(data, rep, np.random.RandomState(seed), **kw)


@pytest.mark.parametrize("rep_name", REPS)
def test_dci_matches_dlib_on_synthetic(dlib_dci, rep_name):
    data = SyntheticData(factor_sizes=(2, 3, 5))
    rep = representations(3, 3)[rep_name]
    for seed in (0, 1):
        ours = compute_dci(data, rep, np.random.RandomState(seed), num_train=400, num_test=200, n_jobs=2,
                           tree_seed=seed + 10)
        ref = _dlib_dci(dlib_dci, data, rep, seed, seed + 10, num_train=400, num_test=200)
        assert ours == ref


def test_dci_matches_dlib_on_dsprites(dlib_dci):
    from gmgbench.harness.data import load

    data = load("dsprites_procedural")
    ours = compute_dci(data, dsprites_moments, np.random.RandomState(0), num_train=300, num_test=150, tree_seed=3)
    ref = _dlib_dci(dlib_dci, data, dsprites_moments, 0, 3, num_train=300, num_test=150)
    assert ours == ref


@pytest.mark.slow
def test_dci_matches_dlib_at_study_size(dlib_dci):
    """Study sizes (10000 train / 5000 test, batch 16) on factors of 2, 3 and 4 values.

    dSprites-shaped factors (a 40-class factor) take ~9 min in dlib on 2 cores; the sampling,
    sizes and classifiers tested here are the same, only the class counts (8 trees per
    boosting stage instead of 113) are smaller.
    """
    data = SyntheticWithNuisance(noise_dims=3, factor_sizes=(2, 3, 4, 5))
    rep = representations(3, 3)["noisy"]
    ours = compute_dci(data, rep, np.random.RandomState(0), tree_seed=0)
    ref = _dlib_dci(dlib_dci, data, rep, 0, 0, num_train=10000, num_test=5000)
    assert ours == ref


def test_dci_scores_match_dlib_formulas_on_fixed_importance(dlib_dci):
    rs = np.random.RandomState(0)
    for shape in [(5, 3), (4, 4), (6, 2)]:
        r = rs.rand(*shape)
        r[0] = 0.0  # a code no factor uses
        assert disentanglement(r) == pytest.approx(dlib_dci.disentanglement(r), abs=1e-12)
        assert completeness(r) == pytest.approx(dlib_dci.completeness(r), abs=1e-12)
    zero = np.zeros((3, 2))
    assert disentanglement(zero) == pytest.approx(dlib_dci.disentanglement(zero), abs=1e-12)


def test_dci_is_reproducible_and_parallel_equals_serial():
    # 1000 training points: the size from which worker processes and stage threads are used.
    data = SyntheticData(factor_sizes=(2, 3))
    rep = representations(2, 3)["duplicated_dim"]
    a = compute_dci(data, rep, np.random.RandomState(5), num_train=1000, num_test=100, n_jobs=1)
    b = compute_dci(data, rep, np.random.RandomState(5), num_train=1000, num_test=100, n_jobs=2)
    c = compute_dci(data, rep, np.random.RandomState(5), num_train=1000, num_test=100, n_jobs=2)
    assert a == b == c


@pytest.mark.parametrize("num_classes", [2, 4])
def test_preset_gbc_equals_sklearn_gbc_with_ties(num_classes):
    from sklearn.ensemble import GradientBoostingClassifier

    rs = np.random.RandomState(0)
    x = rs.randint(3, size=(400, 2)).astype(float)
    x = np.concatenate([x, x], axis=1)  # duplicated columns: every split ties
    y = (x[:, 0] + x[:, 1] + rs.randint(2, size=400)) % num_classes
    imp, train_acc, test_acc = importance_gbt(x[:300], y[:300, None], x[300:], y[300:, None], tree_seed=7, n_jobs=2)
    ref = GradientBoostingClassifier(random_state=np.random.RandomState(7)).fit(x[:300], y[:300])
    np.testing.assert_array_equal(imp[:, 0], ref.feature_importances_)
    assert train_acc == np.mean(ref.predict(x[:300]) == y[:300])
    assert test_acc == np.mean(ref.predict(x[300:]) == y[300:])


def test_dci_perfect_code_scores_high_and_constant_factor_does_not_crash():
    rs = np.random.RandomState(0)
    factors = np.stack([rs.randint(3, size=300), rs.randint(4, size=300), np.zeros(300, dtype=int)], axis=1)
    codes = np.concatenate([factors[:, :2] + 0.01 * rs.randn(300, 2), np.ones((300, 1))], axis=1)
    out = dci_from_codes(codes[:200], factors[:200], codes[200:], factors[200:], n_jobs=2)
    assert out["disentanglement"] > 0.9
    assert out["informativeness_test"] == pytest.approx(1.0)


def test_dci_array_api_names_the_bad_argument():
    with pytest.raises(ValueError, match="codes_test"):
        dci_from_codes(np.zeros((10, 2)), np.zeros((10, 1), dtype=int), np.zeros((10,)), np.zeros((10, 1), dtype=int))


def test_evaluate_shares_codes_between_mig_and_dci():
    data = SyntheticData(factor_sizes=(3, 4))
    calls = []
    base = representations(2, 3)["noisy"]

    def rep(x):
        calls.append(len(x))
        return base(x)

    out = metrics.evaluate(data, rep, {"mig": {"num_train": 320}, "dci": {"num_train": 320, "num_test": 160}}, 0)
    # MIG's 320 points are DCI's training points: encoded once, then only the 160 test points.
    assert sum(calls) == 320 + 160
    assert out["mig"] == compute_mig(data, base, np.random.RandomState(0), num_train=320)
    assert out["dci"] == compute_dci(data, base, np.random.RandomState(0), num_train=320, num_test=160)


def _n_jobs_into(queue):
    from gmgbench.metrics.dci import default_n_jobs

    queue.put(default_n_jobs())


def test_a_daemonic_worker_fits_in_one_job_without_loky():
    """`gmgbench run --workers N` workers are daemonic, where loky cannot start processes
    (joblib would warn and fall back); DCI asks for one job there itself."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_n_jobs_into, args=(queue,), daemon=True)
    proc.start()
    got = queue.get(timeout=120)
    proc.join(timeout=60)
    assert got == 1
