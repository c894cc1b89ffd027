"""The beta-VAE metric (Higgins et al. 2017), dlib's scikit-learn version.

Each training point fixes one random factor across two batches of ``batch_size`` observations
and records the mean absolute difference of their codes; a logistic regression must predict
which factor was fixed. The score is its accuracy (train and held-out). Depends on
scikit-learn's ``LogisticRegression`` defaults (lbfgs, multinomial, max_iter 100), which
changed in 0.22: numbers before and after differ.
"""
from __future__ import annotations

import numpy as np
from sklearn import linear_model

from gmgbench.metrics import sampling
from gmgbench.metrics.validation import check_random_state

__all__ = ["compute_beta_vae_sklearn"]


def compute_beta_vae_sklearn(ground_truth_data, representation_function, random_state, artifact_dir=None,
                             batch_size: int = 64, num_train: int = 10000, num_eval: int = 5000
                             ) -> dict[str, float]:
    """dlib's ``compute_beta_vae_sklearn``: ``{"train_accuracy", "eval_accuracy"}``."""
    del artifact_dir
    check_random_state(random_state)
    train_points, train_labels = _generate_training_batch(ground_truth_data, representation_function,
                                                          batch_size, num_train, random_state)
    model = linear_model.LogisticRegression(random_state=random_state)
    model.fit(train_points, train_labels)
    train_accuracy = np.mean(model.predict(train_points) == train_labels)
    eval_points, eval_labels = _generate_training_batch(ground_truth_data, representation_function,
                                                        batch_size, num_eval, random_state)
    eval_accuracy = model.score(eval_points, eval_labels)
    return {"train_accuracy": float(train_accuracy), "eval_accuracy": float(eval_accuracy)}


def _pairs(ground_truth_data, batch_size: int, num_points: int, random_state, labels: np.ndarray):
    """dlib's draws, in its order: fixed factor, two factor batches, then both observations."""
    for i in range(num_points):
        index = random_state.randint(ground_truth_data.num_factors)
        factors1 = ground_truth_data.sample_factors(batch_size, random_state)
        factors2 = ground_truth_data.sample_factors(batch_size, random_state)
        factors2[:, index] = factors1[:, index]
        labels[i] = index
        yield ground_truth_data.sample_observations_from_factors(factors1, random_state)
        yield ground_truth_data.sample_observations_from_factors(factors2, random_state)


def _generate_training_batch(ground_truth_data, representation_function, batch_size: int, num_points: int,
                             random_state) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros(num_points, dtype=np.int64)
    codes = sampling.encode_groups(representation_function,
                                   _pairs(ground_truth_data, batch_size, num_points, random_state, labels))
    points = None
    for i in range(num_points):
        rep1, rep2 = next(codes), next(codes)
        feature_vector = np.mean(np.abs(rep1 - rep2), axis=0)
        if points is None:
            points = np.zeros((num_points, feature_vector.shape[0]))
        points[i, :] = feature_vector
    return points, labels
