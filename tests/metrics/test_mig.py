import numpy as np
import pytest

from gmgbench import metrics
from gmgbench.metrics.mig import compute_mig, mig_from_codes
from metric_cases import SyntheticData, SyntheticWithNuisance, dsprites_moments, representations
from dlib_reference import bind_study_defaults, dlib

REPS = list(representations(4, 3))


@pytest.fixture(scope="module")
def dlib_mig():
    mod = dlib("evaluation.metrics.mig")
    bind_study_defaults()
    return mod


@pytest.mark.parametrize("rep_name", REPS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mig_equals_dlib_on_synthetic(dlib_mig, rep_name, seed):
    data = SyntheticData()
    rep = representations(4, 3)[rep_name]
    ours = compute_mig(data, rep, np.random.RandomState(seed), num_train=1000)
    ref = dlib_mig.compute_mig(data, rep, np.random.RandomState(seed), num_train=1000)
    assert ours == {"discrete_mig": ref["discrete_mig"]}


def test_mig_equals_dlib_with_nuisance_and_odd_batch(dlib_mig):
    data = SyntheticWithNuisance()
    rep = representations(4, 3)["noisy"]
    ours = compute_mig(data, rep, np.random.RandomState(3), num_train=1001, batch_size=7)
    ref = dlib_mig.compute_mig(data, rep, np.random.RandomState(3), num_train=1001, batch_size=7)
    assert ours["discrete_mig"] == ref["discrete_mig"]


def test_mig_equals_dlib_on_dsprites(dlib_mig):
    from gmgbench.harness.data import load

    data = load("dsprites_procedural")
    ours = compute_mig(data, dsprites_moments, np.random.RandomState(0), num_train=600)
    ref = dlib_mig.compute_mig(data, dsprites_moments, np.random.RandomState(0), num_train=600)
    assert ours["discrete_mig"] == ref["discrete_mig"]


@pytest.mark.slow
def test_mig_equals_dlib_at_study_size(dlib_mig):
    data = SyntheticWithNuisance(noise_dims=4)
    rep = representations(4, 4)["duplicated_dim"]
    ours = compute_mig(data, rep, np.random.RandomState(0))  # study default: 10000 points, batch 16
    ref = dlib_mig.compute_mig(data, rep, np.random.RandomState(0), num_train=10000)
    assert ours["discrete_mig"] == ref["discrete_mig"]


def test_mig_of_identity_beats_rotation():
    data = SyntheticData(noise_dims=1)
    reps = representations(4, 1)
    good = compute_mig(data, reps["identity"], np.random.RandomState(0), num_train=2000)["discrete_mig"]
    bad = compute_mig(data, reps["rotated"], np.random.RandomState(0), num_train=2000)["discrete_mig"]
    assert good > 0.5 > bad


def test_mig_single_code_dim_and_constant_factor_do_not_crash():
    rs = np.random.RandomState(0)
    factors = np.stack([rs.randint(4, size=500), np.zeros(500, dtype=int)], axis=1)
    codes = factors[:, :1] + 0.01 * rs.randn(500, 1)
    out = mig_from_codes(codes, factors)
    # One code dim: the gap is its whole normalised information; the constant factor is left out.
    assert out["discrete_mig"] == pytest.approx(1.0)


def test_mig_array_api_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="codes has 10 points but factors has 9"):
        mig_from_codes(np.zeros((10, 2)), np.zeros((9, 2), dtype=int))


def test_mig_rejects_a_non_randomstate():
    with pytest.raises(TypeError, match="RandomState"):
        compute_mig(SyntheticData(), representations(4, 3)["identity"], 0, num_train=10)


def test_evaluate_runs_mig_via_registry():
    data = SyntheticData()
    rep = representations(4, 3)["noisy"]
    out = metrics.evaluate(data, rep, {"mig": {"num_train": 500}}, random_seed=4)
    assert out == {"mig": compute_mig(data, rep, np.random.RandomState(4), num_train=500)}
