"""Ours against disentanglement_lib 1.5 on the same datasets, seeds and representations.

Deterministic metrics must agree exactly; where ours fixes a dlib bug the test asserts both
dlib's (wrong) value and ours, so a change on either side is noticed. MIG and DCI have their own
files (test_mig.py, test_dci.py).
"""
import math

import numpy as np
import pytest

from gmgbench.metrics.beta_vae import compute_beta_vae_sklearn
from gmgbench.metrics.factor_vae import compute_factor_vae
from gmgbench.metrics.irs import compute_irs
from gmgbench.metrics.modularity_explicitness import compute_modularity_explicitness
from gmgbench.metrics.sap_score import compute_sap
from gmgbench.metrics.unsupervised import unsupervised_metrics
from metric_cases import SyntheticData, SyntheticWithNuisance, dsprites_moments, representations
from dlib_reference import bind_study_defaults, dlib

K, NOISE = 4, 3
REPS = list(representations(K, NOISE))
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def ref():
    mods = {name: dlib(f"evaluation.metrics.{name}") for name in
            ("beta_vae", "factor_vae", "irs", "modularity_explicitness", "sap_score", "unsupervised_metrics")}
    bind_study_defaults()
    return mods


def _rep(name):
    return representations(K, NOISE)[name]


def _same(ours: dict, theirs: dict, skip=()):
    assert set(ours) == set(theirs)
    for key in theirs:
        if key in skip:
            continue
        a, b = ours[key], theirs[key]
        if np.iscomplexobj(b):
            # dlib returns a complex number when sqrtm of a singular covariance is complex; ours
            # is its real part (taken before, not after, dividing by the trace: last-bit rounding).
            assert a == pytest.approx(float(np.real(b)), rel=1e-12, abs=1e-15), (key, a, b)
            continue
        b = float(b)
        assert a == b or (math.isnan(a) and math.isnan(b)), (key, a, b)


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_beta_vae(ref, rep_name, seed):
    kw = dict(batch_size=16, num_train=150, num_eval=80)
    data = SyntheticData()
    ours = compute_beta_vae_sklearn(data, _rep(rep_name), np.random.RandomState(seed), **kw)
    theirs = ref["beta_vae"].compute_beta_vae_sklearn(data, _rep(rep_name), np.random.RandomState(seed), **kw)
    _same(ours, theirs)


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_factor_vae(ref, rep_name, seed):
    kw = dict(batch_size=16, num_train=150, num_eval=80, num_variance_estimate=400)
    data, rep = SyntheticData(), _rep(rep_name)
    ours = compute_factor_vae(data, rep, np.random.RandomState(seed), **kw)
    theirs = ref["factor_vae"].compute_factor_vae(data, rep, np.random.RandomState(seed), **kw)
    _same(ours, theirs, skip=("num_active_dims",))
    # dlib's num_active_dims is the length of its boolean mask: every dim. Ours counts the active ones.
    codes = rep(data.sample_observations(400, np.random.RandomState(seed)))
    num_dims = codes.shape[1]
    expected = np.sum(np.std(codes, axis=0, ddof=1) >= 0.05)
    assert theirs["num_active_dims"] == num_dims
    assert ours["num_active_dims"] == expected
    if rep_name == "constant_dim":
        assert expected == num_dims - 1


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_irs(ref, rep_name, seed):
    data = SyntheticWithNuisance() if seed else SyntheticData()
    rep = _rep(rep_name)
    ours = compute_irs(data, rep, np.random.RandomState(seed), num_train=600)
    theirs = ref["irs"].compute_irs(data, rep, np.random.RandomState(seed), num_train=600, batch_size=16)
    _same(ours, theirs, skip=("num_active_dims",))
    codes = rep(data.sample_observations(600, np.random.RandomState(seed)))
    # dlib's num_active_dims sums the non-constant dims' code values; ours counts those dims.
    active = np.var(codes, axis=0) > 0
    assert ours["num_active_dims"] == active.sum()
    assert theirs["num_active_dims"] != active.sum() or rep_name == "constant_dim"


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_modularity_explicitness(ref, rep_name, seed):
    data, rep = SyntheticData(), _rep(rep_name)
    ours = compute_modularity_explicitness(data, rep, np.random.RandomState(seed), num_train=500, num_test=300)
    mod = ref["modularity_explicitness"]
    if rep_name == "constant_dim":
        # dlib standardises by a zero standard deviation and the classifier refuses NaN.
        with pytest.raises(ValueError, match="NaN"):
            mod.compute_modularity_explicitness(data, rep, np.random.RandomState(seed), num_train=500, num_test=300)
        assert all(np.isfinite(v) for v in ours.values())
        # Modularity (mutual information only) is unaffected by the fix.
        dims = rep(np.zeros((1, 1, 1, K + NOISE), np.float32)).shape[1]
        assert 0.0 <= ours["modularity_score"] <= 1.0 and dims == K + 1
        return
    theirs = mod.compute_modularity_explicitness(data, rep, np.random.RandomState(seed), num_train=500, num_test=300)
    _same(ours, theirs)


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_sap(ref, rep_name, seed):
    data, rep = SyntheticData(), _rep(rep_name)
    kw = dict(num_train=400, num_test=200)
    ours = compute_sap(data, rep, np.random.RandomState(seed), n_jobs=2, **kw)
    theirs = ref["sap_score"].compute_sap(data, rep, np.random.RandomState(seed), continuous_factors=False, **kw)
    _same(ours, theirs)


def test_sap_continuous(ref):
    data = SyntheticData()
    rep = _rep("noisy")
    ours = compute_sap(data, rep, np.random.RandomState(0), num_train=400, num_test=200, continuous_factors=True)
    theirs = ref["sap_score"].compute_sap(data, rep, np.random.RandomState(0), num_train=400, num_test=200,
                                          continuous_factors=True)
    _same(ours, theirs)


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", SEEDS)
def test_unsupervised(ref, rep_name, seed):
    data, rep = SyntheticData(), _rep(rep_name)
    ours = unsupervised_metrics(data, rep, np.random.RandomState(seed), num_train=600)
    with np.errstate(all="ignore"):
        theirs = ref["unsupervised_metrics"].unsupervised_metrics(data, rep, np.random.RandomState(seed), num_train=600)
    if rep_name == "constant_dim":
        # dlib takes log(0) of the constant dim's variance; ours leaves the dim out.
        assert not np.isfinite(theirs["gaussian_total_correlation"])
        assert np.isfinite(ours["gaussian_total_correlation"])
        _same(ours, theirs, skip=("gaussian_total_correlation",))
        return
    _same(ours, theirs)


def test_all_on_dsprites(ref):
    """The procedural dSprites images and a hand-made 6-dim encoder, every metric at a small size."""
    from gmgbench.harness.data import load

    data = load("dsprites_procedural")
    rs = np.random.RandomState
    _same(compute_irs(data, dsprites_moments, rs(0), num_train=400),
          ref["irs"].compute_irs(data, dsprites_moments, rs(0), num_train=400, batch_size=16), skip=("num_active_dims",))
    _same(compute_sap(data, dsprites_moments, rs(0), num_train=300, num_test=200),
          ref["sap_score"].compute_sap(data, dsprites_moments, rs(0), num_train=300, num_test=200, continuous_factors=False))
    _same(unsupervised_metrics(data, dsprites_moments, rs(0), num_train=400),
          ref["unsupervised_metrics"].unsupervised_metrics(data, dsprites_moments, rs(0), num_train=400))
    _same(compute_modularity_explicitness(data, dsprites_moments, rs(0), num_train=400, num_test=200),
          ref["modularity_explicitness"].compute_modularity_explicitness(data, dsprites_moments, rs(0), num_train=400,
                                                                          num_test=200))
    kw = dict(batch_size=8, num_train=40, num_eval=20)
    _same(compute_beta_vae_sklearn(data, dsprites_moments, rs(0), **kw),
          ref["beta_vae"].compute_beta_vae_sklearn(data, dsprites_moments, rs(0), **kw))
    kw = dict(batch_size=8, num_train=40, num_eval=20, num_variance_estimate=200)
    _same(compute_factor_vae(data, dsprites_moments, rs(0), **kw),
          ref["factor_vae"].compute_factor_vae(data, dsprites_moments, rs(0), **kw), skip=("num_active_dims",))


# -- study sizes (dlib's unsupervised_study_v1 defaults), one test per metric ---------------------

def _study_data():
    return SyntheticWithNuisance(noise_dims=3)


# (dlib module, its function, ours, representation, dlib's study-size arguments, keys not compared)
STUDY_SIZE = [
    ("beta_vae", "compute_beta_vae_sklearn", compute_beta_vae_sklearn, "noisy",
     dict(batch_size=64, num_train=10000, num_eval=5000), ()),
    ("factor_vae", "compute_factor_vae", compute_factor_vae, "duplicated_dim",
     dict(batch_size=64, num_train=10000, num_eval=5000, num_variance_estimate=10000), ("num_active_dims",)),
    ("modularity_explicitness", "compute_modularity_explicitness", compute_modularity_explicitness, "rotated",
     dict(num_train=10000, num_test=5000), ()),
    ("sap_score", "compute_sap", compute_sap, "noisy", dict(num_train=10000, num_test=5000, continuous_factors=False), ()),
    ("irs", "compute_irs", compute_irs, "noisy", dict(num_train=10000, batch_size=16), ("num_active_dims",)),
    ("unsupervised_metrics", "unsupervised_metrics", unsupervised_metrics, "rotated", dict(num_train=10000), ()),
]


@pytest.mark.slow
@pytest.mark.parametrize("module, theirs, ours, rep_name, kw, skip", STUDY_SIZE, ids=[c[0] for c in STUDY_SIZE])
def test_at_study_size(ref, module, theirs, ours, rep_name, kw, skip):
    """Our defaults are dlib's study sizes: called with none, ours equals dlib called with them."""
    data, rep = _study_data(), _rep(rep_name)
    _same(ours(data, rep, np.random.RandomState(0)),
          getattr(ref[module], theirs)(data, rep, np.random.RandomState(0), **kw), skip=skip)


def test_explicitness_with_a_class_missing_from_the_test_set(ref):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from gmgbench.metrics.modularity_explicitness import explicitness_per_factor

    rs = np.random.RandomState(0)
    x, y = rs.randn(2, 200), rs.randint(3, size=200)
    x_test, y_test = rs.randn(2, 50), rs.randint(2, size=50)  # class 2 never occurs
    with pytest.raises(IndexError):
        ref["modularity_explicitness"].explicitness_per_factor(x, y, x_test, y_test)
    _, ours_test = explicitness_per_factor(x, y, x_test, y_test)
    proba = LogisticRegression().fit(x.T, y).predict_proba(x_test.T)
    expected = np.mean([roc_auc_score(y_test == c, proba[:, c]) for c in (0, 1)])
    assert ours_test == pytest.approx(expected, abs=1e-12)
