"""The FactorVAE metric (Kim & Mnih 2018).

Codes are scaled by their global standard deviation (dims below ``prune_threshold`` are
dropped as collapsed); each vote fixes one random factor across ``batch_size`` observations and
records the code dim of least normalised variance; a majority-vote classifier maps dims to
factors. Scores are its train and held-out accuracy.
"""
from __future__ import annotations

import numpy as np

from gmgbench.metrics import sampling
from gmgbench.metrics.validation import check_random_state

__all__ = ["compute_factor_vae"]


def compute_factor_vae(ground_truth_data, representation_function, random_state, artifact_dir=None,
                       batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000,
                       num_variance_estimate: int = 10000, prune_threshold: float = 0.05) -> dict[str, float]:
    """dlib's ``compute_factor_vae``; ``prune_threshold`` is the study's ``prune_dims.threshold``.

    Unlike dlib, ``num_active_dims`` counts the active dims (dlib reports all dims), and a dim of
    zero variance is never active (with threshold 0 dlib divides by its zero variance).
    """
    del artifact_dir
    check_random_state(random_state)
    observations = ground_truth_data.sample_observations(num_variance_estimate, random_state)
    # dlib encodes these in batches of 64; any chunking gives the same rows.
    representations = sampling.encode(representation_function, observations)
    global_variances = np.var(representations, axis=0, ddof=1)
    active_dims = (np.sqrt(global_variances) >= prune_threshold) & (global_variances > 0)
    if not active_dims.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}
    training_votes = _generate_training_batch(ground_truth_data, representation_function, batch_size, num_train,
                                              random_state, global_variances, active_dims)
    classifier = np.argmax(training_votes, axis=0)
    other_index = np.arange(training_votes.shape[1])
    train_accuracy = np.sum(training_votes[classifier, other_index]) * 1. / np.sum(training_votes)
    eval_votes = _generate_training_batch(ground_truth_data, representation_function, batch_size, num_eval,
                                          random_state, global_variances, active_dims)
    eval_accuracy = np.sum(eval_votes[classifier, other_index]) * 1. / np.sum(eval_votes)
    return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy),
            "num_active_dims": float(np.sum(active_dims))}


def _batches(ground_truth_data, batch_size: int, num_points: int, random_state, factor_indices: np.ndarray):
    """dlib's draws, in its order: the fixed factor, the factors, then the observations."""
    for i in range(num_points):
        factor_index = random_state.randint(ground_truth_data.num_factors)
        factors = ground_truth_data.sample_factors(batch_size, random_state)
        factors[:, factor_index] = factors[0, factor_index]
        factor_indices[i] = factor_index
        yield ground_truth_data.sample_observations_from_factors(factors, random_state)


def _generate_training_batch(ground_truth_data, representation_function, batch_size: int, num_points: int,
                             random_state, global_variances: np.ndarray, active_dims: np.ndarray) -> np.ndarray:
    votes = np.zeros((ground_truth_data.num_factors, global_variances.shape[0]), dtype=np.int64)
    factor_indices = np.zeros(num_points, dtype=np.int64)
    codes = sampling.encode_groups(representation_function,
                                   _batches(ground_truth_data, batch_size, num_points, random_state, factor_indices))
    for i in range(num_points):
        local_variances = np.var(next(codes), axis=0, ddof=1)
        # As in dlib, the vote's column is the position among the active dims; only the
        # grouping of votes matters to the majority-vote accuracy.
        argmin = np.argmin(local_variances[active_dims] / global_variances[active_dims])
        votes[factor_indices[i], argmin] += 1
    return votes
