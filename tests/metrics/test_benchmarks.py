"""Side-by-side timings against disentanglement_lib (ratios printed, never asserted).

Default sizes are small so `make test` (benchmarks disabled: each body runs once) stays quick;
GMGBENCH_BENCH_FULL=1 switches to the study sizes of dSprites (factors 3, 6, 40, 32, 32;
10 000 train / 5 000 test points; 10-dim codes; ~15 min on 2 idle cores). Rerun:

    GMGBENCH_BENCH_FULL=1 .venv/bin/python -m pytest tests/metrics/test_benchmarks.py \
        -m benchmark_side_by_side --benchmark-enable -s -p no:cacheprovider
"""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from gmgbench.metrics.dci import default_n_jobs, importance_gbt, scores_from_importance
from gmgbench.metrics.dci_fast import importance_hist_gbt
from dlib_reference import dlib

FULL = os.environ.get("GMGBENCH_BENCH_FULL") == "1"
DSPRITES_SIZES = (3, 6, 40, 32, 32)
# GMGBENCH_BENCH_TRAIN=n picks another training size (test: n // 2), e.g. on a busy machine.
NUM_TRAIN = 10000 if FULL else int(os.environ.get("GMGBENCH_BENCH_TRAIN", "200"))
NUM_TEST = NUM_TRAIN // 2


def model_like_codes(num_points: int, seed: int = 0):
    """Codes of a partly disentangled model: noisy, entangled functions of dSprites' factors.

    Dims 0-4 each follow mostly one factor, mixed with the others and noise; dims 5-8 are
    random mixtures; dim 9 is noise (a collapsed latent).
    """
    rs = np.random.RandomState(seed)
    sizes = np.array(DSPRITES_SIZES)
    factors = np.stack([rs.randint(s, size=num_points) for s in sizes], axis=1)
    unit = factors / (sizes - 1) - 0.5
    mix = np.eye(5) * 2.0 + 0.3 * rs.randn(5, 5)
    codes = np.concatenate([np.tanh(unit @ mix), np.tanh(unit @ rs.randn(5, 4)), rs.randn(num_points, 1)], axis=1)
    codes += 0.05 * rs.randn(*codes.shape)
    return codes, factors


def _report(name, t_dlib, t_ours, extra=""):
    line = f"\n[{name}] {NUM_TRAIN}/{NUM_TEST} points, {default_n_jobs()} cores: dlib {t_dlib:.1f} s, " \
           f"ours {t_ours:.1f} s, speed-up {t_dlib / t_ours:.2f}x {extra}"
    print(line)
    return line


@pytest.fixture(scope="module")
def dsprites_codes():
    codes, factors = model_like_codes(NUM_TRAIN + NUM_TEST)
    return codes[:NUM_TRAIN], factors[:NUM_TRAIN], codes[NUM_TRAIN:], factors[NUM_TRAIN:]


@pytest.fixture(scope="module")
def dlib_dci_result(dsprites_codes):
    """dlib's classifier stage, timed once and shared by both DCI benchmarks."""
    mod = dlib("evaluation.metrics.dci")
    x_train, y_train, x_test, y_test = dsprites_codes
    np.random.seed(0)
    start = time.perf_counter()
    importance, train_acc, test_acc = mod.compute_importance_gbt(x_train.T, y_train.T, x_test.T, y_test.T)
    elapsed = time.perf_counter() - start
    return elapsed, scores_from_importance(importance, train_acc, test_acc)


def _timed_once(benchmark, importance):
    """DCI scores from ``importance()`` (run once, under pytest-benchmark) and its seconds."""
    timings = []

    def ours():
        start = time.perf_counter()
        out = importance()
        timings.append(time.perf_counter() - start)
        return out

    return scores_from_importance(*benchmark.pedantic(ours, rounds=1, iterations=1)), timings[0]


@pytest.mark.benchmark_side_by_side
@pytest.mark.benchmark(group="dci")
def test_bench_dci_exact_vs_dlib(benchmark, dsprites_codes, dlib_dci_result):
    t_dlib, ref = dlib_dci_result
    result, seconds = _timed_once(benchmark, lambda: importance_gbt(*dsprites_codes, tree_seed=0))
    _report("DCI exact", t_dlib, seconds)
    # Same draws as dlib after np.random.seed(0): the same numbers, only faster.
    assert result == ref


@pytest.mark.benchmark_side_by_side
@pytest.mark.benchmark(group="dci")
def test_bench_dci_fast_vs_dlib(benchmark, dsprites_codes, dlib_dci_result):
    t_dlib, ref = dlib_dci_result
    result, seconds = _timed_once(benchmark, lambda: importance_hist_gbt(*dsprites_codes))
    delta_d = result["disentanglement"] - ref["disentanglement"]
    delta_c = result["completeness"] - ref["completeness"]
    _report("DCI fast", t_dlib, seconds,
            f"|dD| = {abs(delta_d):.4f} (D {result['disentanglement']:.4f} vs {ref['disentanglement']:.4f}), "
            f"|dC| = {abs(delta_c):.4f}, informativeness_test {result['informativeness_test']:.4f} vs "
            f"{ref['informativeness_test']:.4f}")
    assert set(result) == set(ref)
