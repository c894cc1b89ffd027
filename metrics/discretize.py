"""dlib's histogram discretiser and discrete mutual information, points-first.

Kept call for call identical to ``disentanglement_lib.evaluation.metrics.utils`` (same NumPy
histogram edges, same ``sklearn.metrics.mutual_info_score`` argument order), so the numbers are
bit-identical to dlib's.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import mutual_info_score

__all__ = ["histogram_discretize", "discrete_mutual_info", "discrete_entropy"]


def histogram_discretize(values: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Bin index of each value ``(N, D)``, per column, on ``num_bins`` equal-width bins.

    dlib's ``np.digitize(x, np.histogram(x, num_bins)[1][:-1])``: indices 1..num_bins; a constant
    column lands in one bin (NumPy widens its range by ±0.5).
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"expected a (num_points, num_dims) array, got shape {values.shape}")
    if int(num_bins) < 1:
        raise ValueError(f"num_bins must be a positive integer, got {num_bins!r}")
    out = np.zeros(values.shape, dtype=np.int64)
    for i in range(values.shape[1]):
        column = values[:, i]
        out[:, i] = np.digitize(column, np.histogram(column, int(num_bins))[1][:-1])
    return out


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """``(D, K)`` mutual information (nats) between discrete code columns and factor columns."""
    m = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            m[i, j] = mutual_info_score(factors[:, j], codes[:, i])
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """``(K,)`` entropy (nats) of each discrete column, computed as dlib does (I(y; y))."""
    return np.array([mutual_info_score(factors[:, j], factors[:, j]) for j in range(factors.shape[1])])
