"""Interventional Robustness Score (Suter et al. 2019, "Robustly Disentangled Causal Mechanisms").

For each code dim and factor, how much the code moves (the ``diff_quantile`` quantile of
|z − E[z | factor value]|) while that factor is held fixed, relative to the dim's largest
deviation; a dim's score is its best factor's 1 − normalised deviation, averaged over non-constant
dims weighted by their largest deviation. As in dlib, the factors are first binned into
``num_bins`` equal-width histogram bins (so a 40-valued factor is seen as 20 values).
"""
from __future__ import annotations

import numpy as np

from gmgbench.metrics import sampling
from gmgbench.metrics.discretize import histogram_discretize
from gmgbench.metrics.validation import check_codes_factors

__all__ = ["compute_irs", "irs_from_codes", "scalable_disentanglement_score"]


def compute_irs(ground_truth_data, representation_function, random_state, artifact_dir=None,
                diff_quantile: float = 0.99, num_train: int = 10000, batch_size: int = 16,
                num_bins: int = 20) -> dict[str, float]:
    """dlib's ``compute_irs`` (its ``batch_size`` has no default there; 16 like the other metrics)."""
    del artifact_dir
    codes, factors = sampling.checked_codes(ground_truth_data, representation_function, random_state,
                                            num_train, batch_size)
    return irs_from_codes(codes, factors, diff_quantile=diff_quantile, num_bins=num_bins)


def irs_from_codes(codes, factors, diff_quantile: float = 0.99, num_bins: int = 20) -> dict[str, float]:
    """``{"IRS", "num_active_dims"}``; unlike dlib, ``num_active_dims`` counts the non-constant dims
    (dlib returns the sum of all their code values)."""
    codes, factors = check_codes_factors(codes, factors)
    if not 0.0 <= float(diff_quantile) <= 1.0:
        raise ValueError(f"diff_quantile must lie in [0, 1]; got {diff_quantile}")
    ys_discrete = histogram_discretize(factors, num_bins)
    mus = codes.T  # dlib's (dims, points) layout, so the reductions run in its memory order
    active_mus = mus[mus.var(axis=1) > 0., :]
    if not active_mus.any():
        irs_score = 0.0
    else:
        irs_score = scalable_disentanglement_score(ys_discrete, active_mus.T, diff_quantile)["avg_score"]
    return {"IRS": float(irs_score), "num_active_dims": float(active_mus.shape[0])}


def scalable_disentanglement_score(gen_factors: np.ndarray, latents: np.ndarray, diff_quantile: float = 0.99
                                   ) -> dict[str, np.ndarray]:
    """IRS of ``gen_factors (N, K)`` (discrete) and ``latents (N, D)`` (non-constant dims)."""
    num_gen = gen_factors.shape[1]
    num_lat = latents.shape[1]
    max_deviations = np.max(np.abs(latents - latents.mean(axis=0)), axis=0)
    cum_deviations = np.zeros([num_lat, num_gen])
    for i in range(num_gen):
        unique_factors = np.unique(gen_factors[:, i], axis=0)
        for value in unique_factors:
            match = gen_factors[:, i] == value
            e_loc = np.mean(latents[match, :], axis=0)
            diffs = np.abs(latents[match, :] - e_loc)
            cum_deviations[:, i] += np.percentile(diffs, q=diff_quantile * 100, axis=0)
        cum_deviations[:, i] /= unique_factors.shape[0]
    irs_matrix = 1.0 - cum_deviations / max_deviations[:, np.newaxis]
    disentanglement_scores = irs_matrix.max(axis=1)
    if np.sum(max_deviations) > 0.0:
        avg_score = np.average(disentanglement_scores, weights=max_deviations)
    else:
        avg_score = np.mean(disentanglement_scores)
    return {"disentanglement_scores": disentanglement_scores, "avg_score": avg_score,
            "parents": irs_matrix.argmax(axis=1), "IRS_matrix": irs_matrix, "max_deviations": max_deviations}
