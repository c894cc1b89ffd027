"""Datasets and representations on which ours and dlib's metrics are compared.

Representations are row-wise elementwise NumPy (no BLAS reductions whose summation order
could depend on the batch size), so encoding in large batches gives codes bit-identical to
dlib's batches of 16 and any difference in a score is the metric's, not the encoder's.
"""
from __future__ import annotations

import numpy as np

from gmgbench.harness.data.base import GroundTruthData


class SyntheticData(GroundTruthData):
    """Observations (1, 1, K + noise_dims): factors scaled to [0, 1], then Gaussian noise channels.

    The noise channels are drawn from the random state after the factors (like a nuisance
    factor), so both implementations see the same observations.
    """

    name = "synthetic"
    factor_names = ("a", "b", "c", "d")
    factor_sizes = (3, 5, 8, 10)

    def __init__(self, noise_dims: int = 3, factor_sizes=None):
        if factor_sizes is not None:
            self.factor_sizes = tuple(factor_sizes)
            self.factor_names = tuple(f"f{i}" for i in range(len(factor_sizes)))
        self.noise_dims = noise_dims
        k = len(self.factor_sizes)
        self.observation_shape = (1, 1, k + noise_dims)

    def sample_observations_from_factors(self, factors, random_state):
        f = self._all_factors(factors, random_state).astype(np.float64)
        scaled = f / np.maximum(np.asarray(self.factor_sizes, dtype=np.float64) - 1, 1)
        noise = random_state.randn(f.shape[0], self.noise_dims)
        obs = np.concatenate([scaled, noise], axis=1).astype(np.float32)
        return obs[:, None, None, :]


class SyntheticWithNuisance(SyntheticData):
    """A fourth factor that metrics never see (resampled per observation, like SmallNORB's instance)."""

    latent_factor_indices = (0, 1, 2)


def _flat(x):
    return np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)


def _mix(x, weights):
    """x @ weights, written elementwise so every row is summed in the same order."""
    out = np.zeros((x.shape[0], weights.shape[1]))
    for i in range(weights.shape[0]):
        out += x[:, i:i + 1] * weights[i]
    return out


def representations(k: int, noise_dims: int) -> dict:
    """name -> representation function for SyntheticData(k factors, noise_dims)."""
    rot = np.linalg.qr(np.random.RandomState(7).randn(k, k))[0]
    noise_w = np.random.RandomState(8).randn(noise_dims, k) * 0.3
    rand_w = np.random.RandomState(9).randn(noise_dims, max(k, 2))

    def identity(x):
        return _flat(x)[:, :k]

    def rotated(x):
        return _mix(_flat(x)[:, :k], rot)

    def noisy(x):
        z = _flat(x)
        return z[:, :k] + _mix(z[:, k:], noise_w)

    def random(x):
        return _mix(_flat(x)[:, k:], rand_w)

    def constant_dim(x):
        z = identity(x)
        return np.concatenate([z, np.full((z.shape[0], 1), 0.25)], axis=1)

    def duplicated_dim(x):
        z = noisy(x)
        return np.concatenate([z, z[:, :1]], axis=1)

    def float32_noisy(x):
        return noisy(x).astype(np.float32)

    return {f.__name__: f for f in (identity, rotated, noisy, random, constant_dim, duplicated_dim,
                                    float32_noisy)}


def dsprites_moments(x):
    """A hand-made dSprites 'encoder': mass, centroid and second moments of the sprite (6 dims)."""
    img = np.asarray(x, dtype=np.float64)[..., 0]
    n, h, w = img.shape
    ys = (np.arange(h, dtype=np.float64) / h)[None, :, None]
    xs = (np.arange(w, dtype=np.float64) / w)[None, None, :]
    mass = img.sum(axis=(1, 2)) + 1e-9
    cx = (img * xs).sum(axis=(1, 2)) / mass
    cy = (img * ys).sum(axis=(1, 2)) / mass
    dx = xs - cx[:, None, None]
    dy = ys - cy[:, None, None]
    cxx = (img * dx * dx).sum(axis=(1, 2)) / mass
    cyy = (img * dy * dy).sum(axis=(1, 2)) / mass
    cxy = (img * dx * dy).sum(axis=(1, 2)) / mass
    return np.stack([mass / (h * w), cx, cy, cxx * 100, cyy * 100, cxy * 100], axis=1)
