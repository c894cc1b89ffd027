"""Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs").

For each factor, the gap between the two code dimensions that share the most (histogram-
discretised) mutual information with it, divided by the factor's entropy; averaged over
factors. dlib's ``evaluation.metrics.mig`` with the study's 20-bin histogram discretiser.
"""
from __future__ import annotations

import numpy as np

from gmgbench.metrics import sampling
from gmgbench.metrics.discretize import discrete_entropy, discrete_mutual_info, histogram_discretize
from gmgbench.metrics.validation import check_codes_factors

__all__ = ["compute_mig", "mig_from_codes"]


def compute_mig(ground_truth_data, representation_function, random_state, artifact_dir=None,
                num_train: int = 10000, batch_size: int = 16, num_bins: int = 20) -> dict[str, float]:
    """dlib's ``compute_mig``; ``num_bins`` is the study's ``discretizer.num_bins`` binding."""
    del artifact_dir
    codes, factors = sampling.checked_codes(ground_truth_data, representation_function, random_state,
                                            num_train, batch_size)
    return mig_from_codes(codes, factors, num_bins=num_bins)


def mig_from_codes(codes, factors, num_bins: int = 20) -> dict[str, float]:
    """MIG of ``codes (N, D)`` against discrete ``factors (N, K)``: ``{"discrete_mig": ...}``.

    Unlike dlib, a single code dimension is allowed (its runner-up information is 0), and a
    factor that takes one value (entropy 0) is left out of the average instead of making it
    NaN; MIG is 0 if every factor is constant.
    """
    codes, factors = check_codes_factors(codes, factors)
    m = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)  # (D, K)
    entropy = discrete_entropy(factors)
    sorted_m = np.sort(m, axis=0)[::-1]
    runner_up = sorted_m[1, :] if sorted_m.shape[0] > 1 else np.zeros(sorted_m.shape[1])
    informative = entropy > 0
    if not informative.any():
        return {"discrete_mig": 0.0}
    gaps = (sorted_m[0, informative] - runner_up[informative]) / entropy[informative]
    return {"discrete_mig": float(np.mean(gaps))}
