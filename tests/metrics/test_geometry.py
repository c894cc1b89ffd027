"""metrics/geometry.py: DST and GMG of a model's encoder and decoder on held-out batches, in a
form a model cannot game: relative gap, several starts, centred cosine, collapsed codes refused."""
from __future__ import annotations

import math

import numpy as np
import pytest

from gmgbench import metrics
from gmgbench.harness.data.base import GroundTruthData
import torch

from gmgbench.metrics.geometry import RESULT_KEYS, _costs, compute_geometry, map_gap

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
    assert out.pop("active_dims") == 3 and out.pop("collapsed") == 0.0
    for key, v in out.items():
        assert v == pytest.approx(0.0, abs=1e-9), key


def test_scrambled_encoder_has_a_positive_gap():
    out = compute_geometry(Grid(), _scrambled(), np.random.RandomState(0), num_batches=2, batch_size=32)
    for cost in ("l2sq", "scl2sq", "cos", "ccos"):
        assert out[f"enc_{cost}_dst"] > 0.1
        assert out[f"enc_{cost}_gmg"] > 0.05 * out[f"enc_{cost}_dst"], cost
        assert out[f"enc_{cost}_gmg"] <= out[f"enc_{cost}_dst"]
        assert 0.05 < out[f"enc_{cost}_gmg_rel"] <= 1.0
        assert out[f"enc_{cost}_gmg_rel_ci"] >= 0.0  # two batches: an interval exists


@pytest.mark.parametrize("cost", ["l2sq", "cos", "ccos"])
def test_permuted_isometry_gap_is_its_whole_distortion(cost):
    """Outputs permuted: GW = 0, so the true gap is all of DST and the solver must find it."""
    x = np.random.RandomState(0).randn(48, 6)
    y = x[np.random.RandomState(1).permutation(48)] @ _orthonormal(6, 6, 2)
    dst, gmg, rel = map_gap(x, y, cost)
    assert dst > 0.1 and gmg == pytest.approx(dst, rel=1e-6) and rel == pytest.approx(1.0, rel=1e-6)


def test_gap_is_scale_free_and_never_negative():
    """Scaling both sides by 10 multiplies the raw l2sq DST by 10⁴, not the relative gap; the
    own-coupling start keeps GMG ≥ 0 on a near-isometry (where a product start can land above)."""
    x = np.random.RandomState(3).randn(32, 5)
    y = x @ _orthonormal(5, 5, 4) + 0.3 * np.random.RandomState(5).randn(32, 5)
    d1, g1, r1 = map_gap(x, y, "l2sq")
    d2, g2, r2 = map_gap(10 * x, 10 * y, "l2sq")
    assert g1 >= 0 and r1 >= 0
    assert d2 == pytest.approx(1e4 * d1, rel=1e-9) and r2 == pytest.approx(r1, rel=1e-6, abs=1e-9)


def test_a_shared_offset_changes_the_raw_cosine_cost_but_not_the_centred_one():
    offset = np.full(K, 20.0)

    def shifted():
        base = _isometric()
        encode = lambda x: base(x) + offset  # noqa: E731
        encode.decode = lambda z: base.decode(np.asarray(z) - offset)
        return encode

    a = compute_geometry(Grid(), _scrambled(), np.random.RandomState(0), num_batches=2, batch_size=32)
    scr = _scrambled()
    moved = lambda x: scr(x) + offset  # noqa: E731
    b = compute_geometry(Grid(), moved, np.random.RandomState(0), num_batches=2, batch_size=32)
    # Every code shares an angle near the offset's direction: the raw cosine cost collapses.
    assert b["enc_cos_dst"] != pytest.approx(a["enc_cos_dst"], rel=0.1)
    assert b["enc_ccos_dst"] == pytest.approx(a["enc_ccos_dst"], rel=1e-9)
    # The centred costs agree to round-off; the gap's local solves on this tie-rich grid may
    # take different paths from round-off alone, so it is compared on the costs themselves.
    codes = _scrambled()(Grid().sample_observations_from_factors(np.indices((4, 4, 2)).reshape(3, -1).T, None))
    torch.testing.assert_close(_costs(codes + offset, "ccos"), _costs(codes, "ccos"), rtol=0, atol=1e-12)
    assert float((_costs(codes + offset, "cos") - _costs(codes, "cos")).abs().max()) > 0.1
    iso = compute_geometry(Grid(), shifted(), np.random.RandomState(0), num_batches=1, batch_size=16)
    assert iso["enc_ccos_dst"] == pytest.approx(0.0, abs=1e-9) and iso["enc_cos_dst"] > 1e-3


@pytest.mark.parametrize("live", [0, 1])
def test_a_collapsed_code_gives_nan_gaps_with_its_reason(live):
    """Fewer than min_active_dims (2) latent dimensions vary: every gap key is NaN, the DST
    keys stay, and ``collapsed`` says why."""
    def encode(x):
        z = np.zeros((len(x), 4))
        z[:, :live] = x.reshape(len(x), -1)[:, :live]
        return z

    encode.decode = lambda z: np.repeat(np.asarray(z)[:, None, None, :1], OBS, axis=-1)
    out = compute_geometry(Grid(), encode, np.random.RandomState(0), num_batches=2, batch_size=16)
    assert out["collapsed"] == 1.0 and out["active_dims"] == live
    for key, v in out.items():
        if key.endswith(("_gmg", "_gmg_rel", "_gmg_rel_ci")):
            assert math.isnan(v), key
    assert not math.isnan(out["enc_l2sq_dst"]) and out["enc_l2sq_dst"] > 0


def test_without_a_decoder_the_decoder_keys_are_nan():
    encode = lambda x: x.reshape(len(x), -1).astype(np.float64) @ Q  # noqa: E731
    out = compute_geometry(Grid(), encode, np.random.RandomState(0), num_batches=1, batch_size=16)
    assert all(math.isnan(v) for k, v in out.items() if k.startswith("dec_"))
    # One batch: no interval; every other encoder key is a number.
    assert all(not math.isnan(v) for k, v in out.items() if k.startswith("enc_") and not k.endswith("_ci"))
    assert all(math.isnan(v) for k, v in out.items() if k.endswith("_ci"))


def test_selectable_like_the_other_metrics():
    assert "geometry" in metrics.names()
    assert metrics.result_keys("geometry") == RESULT_KEYS
    out = metrics.evaluate(Grid(), _isometric(), {"geometry": {"num_batches": 1, "batch_size": 16}}, random_seed=0)
    assert out["geometry"]["enc_cos_gmg"] == pytest.approx(0.0, abs=1e-9)
