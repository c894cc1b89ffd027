"""metrics/geometry.py: DST and GMG of a model's encoder and decoder on held-out batches."""
from __future__ import annotations

import math

import numpy as np
import pytest

import metrics
from harness.data.base import GroundTruthData
from metrics.geometry import RESULT_KEYS, compute_geometry, map_gap

K, OBS = 3, 8  # factors, observation dims


def _orthonormal(rows: int, cols: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.RandomState(seed).randn(rows, cols))
    return q  # rows x cols, orthonormal columns


Q = _orthonormal(OBS, K, 0)


class Grid(GroundTruthData):
    """Observations in R^8: a 3-factor grid (10 levels each, centred) embedded by Q."""

    name = "grid"
    factor_names = ("a", "b", "c")
    factor_sizes = (10, 10, 10)
    observation_shape = (1, 1, OBS)

    def sample_observations_from_factors(self, factors, random_state):
        f = np.asarray(factors, np.float64) - 4.5
        return (f @ Q.T).astype(np.float32)[:, None, None, :]


def _isometric():
    encode = lambda x: x.reshape(len(x), -1).astype(np.float64) @ Q  # noqa: E731
    encode.decode = lambda z: (np.asarray(z) @ Q.T)[:, None, None, :]
    return encode


def _scrambled():
    perm = np.random.RandomState(1).permutation(10)

    def encode(x):
        f = np.rint(x.reshape(len(x), -1).astype(np.float64) @ Q + 4.5).astype(int)
        return perm[f] - 4.5  # every factor's levels shuffled: same grid, distances scrambled

    encode.decode = lambda z: (np.asarray(z) @ Q.T)[:, None, None, :]
    return encode


def test_isometric_model_has_no_distortion_and_no_gap():
    out = compute_geometry(Grid(), _isometric(), np.random.RandomState(0), num_batches=2, batch_size=32)
    assert set(out) == set(RESULT_KEYS)
    for key, v in out.items():
        assert v == pytest.approx(0.0, abs=1e-9), key


def test_scrambled_encoder_has_a_positive_gap():
    out = compute_geometry(Grid(), _scrambled(), np.random.RandomState(0), num_batches=2, batch_size=32)
    for cost in ("l2sq", "scl2sq", "cos"):
        assert out[f"enc_{cost}_dst"] > 0.1
        assert out[f"enc_{cost}_gmg"] > 0.05 * out[f"enc_{cost}_dst"], cost
        assert out[f"enc_{cost}_gmg"] <= out[f"enc_{cost}_dst"]


@pytest.mark.parametrize("cost", ["l2sq", "cos"])
def test_permuted_isometry_gap_is_its_whole_distortion(cost):
    """Outputs permuted: GW = 0, so the true gap is all of DST and the solver must find it."""
    x = np.random.RandomState(0).randn(48, 6)
    y = x[np.random.RandomState(1).permutation(48)] @ _orthonormal(6, 6, 2)
    dst, gmg = map_gap(x, y, cost)
    assert dst > 0.1 and gmg == pytest.approx(dst, rel=1e-6)


def test_without_a_decoder_the_decoder_keys_are_nan():
    encode = lambda x: x.reshape(len(x), -1).astype(np.float64) @ Q  # noqa: E731
    out = compute_geometry(Grid(), encode, np.random.RandomState(0), num_batches=1, batch_size=16)
    assert all(math.isnan(v) for k, v in out.items() if k.startswith("dec_"))
    assert all(not math.isnan(v) for k, v in out.items() if k.startswith("enc_"))


def test_selectable_like_the_other_metrics():
    assert "geometry" in metrics.names()
    assert metrics.result_keys("geometry") == RESULT_KEYS
    out = metrics.evaluate(Grid(), _isometric(), {"geometry": {"num_batches": 1, "batch_size": 16}}, random_seed=0)
    assert out["geometry"]["enc_cos_gmg"] == pytest.approx(0.0, abs=1e-9)
