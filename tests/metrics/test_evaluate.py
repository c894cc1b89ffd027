"""metrics.names / evaluate: the interface the training harness calls, and the shared codes."""
import numpy as np
import pytest

from gmgbench import metrics
from gmgbench.metrics import sampling
from metric_cases import SyntheticData, representations

SMALL = {
    "beta_vae": {"batch_size": 8, "num_train": 60, "num_eval": 30},
    "factor_vae": {"batch_size": 8, "num_train": 60, "num_eval": 30, "num_variance_estimate": 200},
    "dci": {"num_train": 160, "num_test": 80},
    "dci_fast": {"num_train": 160, "num_test": 80},
    "mig": {"num_train": 160},
    "modularity_explicitness": {"num_train": 160, "num_test": 80},
    "sap": {"num_train": 160, "num_test": 80},
    "irs": {"num_train": 160},
    "unsupervised": {"num_train": 160},
    "geometry": {"num_batches": 1, "batch_size": 16},  # no decoder here: its dec_* keys are NaN
}


def _counting(rep):
    calls = []

    def wrapped(x):
        calls.append(x.shape[0])
        return rep(x)

    return wrapped, calls


def test_names_are_the_study_metric_names():
    assert set(metrics.names()) == set(SMALL)
    for name in metrics.names():
        assert metrics.result_keys(name)


def test_evaluate_equals_each_metric_run_alone_and_has_dlib_keys():
    data = SyntheticData(factor_sizes=(3, 4, 5))
    rep = representations(3, 3)["noisy"]
    out = metrics.evaluate(data, rep, SMALL, random_seed=2)
    assert list(out) == list(SMALL)
    for name, kwargs in SMALL.items():
        alone = metrics.get(name)(data, rep, np.random.RandomState(2), **kwargs)
        np.testing.assert_equal(out[name], {k: float(v) for k, v in alone.items()}, err_msg=name)  # NaN == NaN
        assert tuple(out[name]) == metrics.result_keys(name)
        assert all(isinstance(v, float) for v in out[name].values())


def test_metric_order_does_not_change_results():
    data = SyntheticData(factor_sizes=(3, 4))
    rep = representations(2, 3)["rotated"]
    names = ["mig", "sap", "irs", "unsupervised"]
    forward = metrics.evaluate(data, rep, {n: SMALL[n] for n in names}, 0)
    backward = metrics.evaluate(data, rep, {n: SMALL[n] for n in reversed(names)}, 0)
    assert forward == backward


def test_codes_are_encoded_once_per_sampled_set():
    data = SyntheticData(factor_sizes=(3, 4))
    rep, calls = _counting(representations(2, 3)["noisy"])
    settings = {n: SMALL[n] for n in ("mig", "irs", "unsupervised", "modularity_explicitness", "sap", "dci")}
    metrics.evaluate(data, rep, settings, 0)
    # All share the 160 training points; the last four share the 80 test points too.
    assert sum(calls) == 160 + 80


def test_a_shorter_run_reuses_a_prefix_of_whole_batches():
    data = SyntheticData()
    rep, calls = _counting(representations(4, 3)["identity"])
    with sampling.shared_codes(data, rep) as cache:
        long_codes, _ = sampling.generate_batch_factor_code(data, rep, 160, np.random.RandomState(0), 16)
        rs = np.random.RandomState(0)
        short_codes, short_factors = sampling.generate_batch_factor_code(data, rep, 64, rs, 16)
        assert cache.hits == 1
        # The RandomState continues where a fresh 64-point run would have left it.
        fresh = np.random.RandomState(0)
        sampling.generate_batch_factor_code(data, representations(4, 3)["identity"], 64, fresh, 16)
        assert rs.randint(10**9) == fresh.randint(10**9)
        # 70 is not a whole number of batches: its last, shorter batch draws differently.
        sampling.generate_batch_factor_code(data, rep, 70, np.random.RandomState(0), 16)
        assert cache.misses == 2
    np.testing.assert_array_equal(short_codes, long_codes[:64])
    assert sum(calls) == 160 + 70


def test_cached_arrays_are_copies():
    data = SyntheticData()
    rep = representations(4, 3)["identity"]
    with sampling.shared_codes(data, rep):
        a, _ = sampling.generate_batch_factor_code(data, rep, 32, np.random.RandomState(0), 16)
        a[:] = -1.0
        b, _ = sampling.generate_batch_factor_code(data, rep, 32, np.random.RandomState(0), 16)
    assert not np.any(b == -1.0)


def test_large_encode_batches_give_dlibs_codes():
    data = SyntheticData()
    rep, calls = _counting(representations(4, 3)["rotated"])
    with sampling.shared_codes(data, rep, encode_batch_size=100):
        codes, factors = sampling.generate_batch_factor_code(data, rep, 250, np.random.RandomState(1), 16)
    assert max(calls) >= 100 and sum(calls) == 250
    rs = np.random.RandomState(1)
    ref = [data.sample(min(16, 250 - i), rs) for i in range(0, 250, 16)]
    np.testing.assert_array_equal(factors, np.concatenate([f for f, _ in ref]))
    np.testing.assert_array_equal(codes, np.concatenate([rep(o) for _, o in ref]))


def test_unknown_metric_names_the_valid_ones():
    with pytest.raises(KeyError, match="valid metrics: .*mig"):
        metrics.evaluate(SyntheticData(), representations(4, 3)["identity"], {"migg": {}}, 0)


def test_unknown_setting_names_the_valid_ones():
    with pytest.raises(TypeError, match=r"'dci' has no setting\(s\) 'num_trian'.*num_train=10000"):
        metrics.evaluate(SyntheticData(), representations(4, 3)["identity"], {"dci": {"num_trian": 5}}, 0)


def test_bad_representation_output_is_named():
    def bad(x):
        return np.zeros((x.shape[0] + 1, 2))

    with pytest.raises(ValueError, match=r"representation_function must map a batch of \d+ observations"):
        metrics.evaluate(SyntheticData(), bad, {"mig": {"num_train": 32}}, 0)


def test_study_defaults_are_dlibs_study_configs():
    assert metrics.settings_of("dci") == {"num_train": 10000, "num_test": 5000, "batch_size": 16, "n_jobs": None,
                                          "tree_seed": None}
    assert metrics.settings_of("mig") == {"num_train": 10000, "batch_size": 16, "num_bins": 20}
    assert metrics.settings_of("factor_vae")["prune_threshold"] == 0.05
    assert metrics.settings_of("beta_vae") == {"batch_size": 64, "num_train": 10000, "num_eval": 5000}
    assert metrics.settings_of("sap")["continuous_factors"] is False


def test_constant_codes_never_crash_any_metric():
    data = SyntheticData(factor_sizes=(3, 4))

    def constant(x):
        return np.full((x.shape[0], 3), 0.5)

    out = metrics.evaluate(data, constant, {n: SMALL[n] for n in SMALL}, 0)
    for name, scores in out.items():
        # geometry's decoder keys are NaN by design when the representation has no decoder, and
        # a constant code is collapsed: its gap keys are NaN, its DST keys stay numbers
        checked = {k: v for k, v in scores.items()
                   if not (name == "geometry" and (k.startswith("dec_") or not k.endswith("_dst")))}
        assert all(np.isfinite(v) for v in checked.values()), (name, scores)
    assert out["mig"]["discrete_mig"] == 0.0
    assert out["factor_vae"]["num_active_dims"] == 0.0
    assert out["geometry"]["collapsed"] == 1.0 and np.isnan(out["geometry"]["enc_cos_gmg"])
