"""Unsupervised scores of a code distribution (no factors used), dlib's ``unsupervised_metrics``.

* gaussian_total_correlation: KL between a Gaussian with the codes' covariance and the product
  of its marginals, ½(Σ log Σ_dd − log det Σ);
* gaussian_wasserstein_correlation: squared 2-Wasserstein distance between the same two
  Gaussians, 2 tr Σ − 2 tr (Σ diag(Σ))^½, and its ``_norm`` divided by tr Σ;
* mutual_info_score: mean pairwise discrete mutual information of the histogram-discretised dims.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from gmgbench.metrics import sampling
from gmgbench.metrics.discretize import discrete_mutual_info, histogram_discretize

__all__ = ["unsupervised_metrics", "unsupervised_from_codes", "gaussian_total_correlation",
           "gaussian_wasserstein_correlation"]


def unsupervised_metrics(ground_truth_data, representation_function, random_state, artifact_dir=None,
                         num_train: int = 10000, batch_size: int = 16, num_bins: int = 20) -> dict[str, float]:
    """dlib's ``unsupervised_metrics``; ``num_bins`` is ``discretizer.num_bins``."""
    del artifact_dir
    codes, _ = sampling.checked_codes(ground_truth_data, representation_function, random_state,
                                      num_train, batch_size)
    return unsupervised_from_codes(codes, num_bins=num_bins)


def unsupervised_from_codes(codes, num_bins: int = 20) -> dict[str, float]:
    """Scores of points-first ``codes (N, D)``.

    Unlike dlib, constant dims are left out of the two Gaussian scores (they are independent of
    everything and contribute 0; dlib's log 0 makes them NaN), and one code dim gives a mutual
    information score of 0 (dlib: 0/0).
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] < 2:
        raise ValueError(f"codes must be a (num_points ≥ 2, num_codes) array; got shape {codes.shape}")
    if not np.all(np.isfinite(codes)):
        raise ValueError("codes contains NaN or infinite values")
    mus_train = codes.T  # dlib's (dims, points) layout
    num_codes = mus_train.shape[0]
    cov_mus = np.atleast_2d(np.cov(mus_train))
    active = np.diag(cov_mus) > 0
    scores = {}
    if active.all():
        cov = cov_mus
    else:
        cov = cov_mus[np.ix_(active, active)]
    if cov.size:
        scores["gaussian_total_correlation"] = float(gaussian_total_correlation(cov))
        wasserstein = gaussian_wasserstein_correlation(cov)
        scores["gaussian_wasserstein_correlation"] = float(wasserstein)
        scores["gaussian_wasserstein_correlation_norm"] = float(wasserstein / np.sum(np.diag(cov_mus)))
    else:
        scores.update(gaussian_total_correlation=0.0, gaussian_wasserstein_correlation=0.0,
                      gaussian_wasserstein_correlation_norm=0.0)
    mus_discrete = histogram_discretize(codes, num_bins)
    mutual_info_matrix = discrete_mutual_info(mus_discrete, mus_discrete)
    np.fill_diagonal(mutual_info_matrix, 0)
    pairs = num_codes ** 2 - num_codes
    scores["mutual_info_score"] = float(np.sum(mutual_info_matrix) / pairs) if pairs else 0.0
    return scores


def gaussian_total_correlation(cov: np.ndarray) -> float:
    """½(Σ log Σ_dd − log det Σ), dlib's formula: a singular Σ (duplicated dims) gives +inf or, when
    round-off leaves det Σ slightly off zero, a large finite number."""
    return 0.5 * (np.sum(np.log(np.diag(cov))) - np.linalg.slogdet(cov)[1])


def gaussian_wasserstein_correlation(cov: np.ndarray) -> float:
    """2 tr Σ − 2 tr (Σ diag(Σ))^½; the real part, as round-off can make sqrtm complex."""
    sqrtm = scipy.linalg.sqrtm(cov * np.expand_dims(np.diag(cov), axis=1))
    return float(np.real(2 * np.trace(cov) - 2 * np.trace(sqrtm)))
