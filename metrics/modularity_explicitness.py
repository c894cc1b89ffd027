"""Modularity and explicitness (Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings").

Modularity: each code dim should carry information (histogram-discretised mutual
information) about one factor only; 1 − (Σ_k m_dk² − max_k m_dk²) / (max_k m_dk² (K − 1)),
averaged over dims. Explicitness: macro ROC-AUC of a one-vs-rest logistic regression
predicting each factor from the standardised codes, averaged over factors (train and test).
"""
from __future__ import annotations

import numpy as np
from sklearn import linear_model, metrics as skmetrics, preprocessing

from gmgbench.metrics import sampling
from gmgbench.metrics.discretize import discrete_mutual_info, histogram_discretize
from gmgbench.metrics.validation import check_train_test

__all__ = ["compute_modularity_explicitness", "modularity_explicitness_from_codes", "modularity",
           "explicitness_per_factor"]


def compute_modularity_explicitness(ground_truth_data, representation_function, random_state, artifact_dir=None,
                                    num_train: int = 10000, num_test: int = 5000, batch_size: int = 16,
                                    num_bins: int = 20) -> dict[str, float]:
    """dlib's ``compute_modularity_explicitness``; ``num_bins`` is ``discretizer.num_bins``."""
    del artifact_dir
    codes_train, factors_train, codes_test, factors_test = sampling.train_test_codes(
        ground_truth_data, representation_function, random_state, num_train, num_test, batch_size)
    return modularity_explicitness_from_codes(codes_train, factors_train, codes_test, factors_test, num_bins=num_bins)


def modularity_explicitness_from_codes(codes_train, factors_train, codes_test, factors_test,
                                       num_bins: int = 20) -> dict[str, float]:
    """Points-first ``codes (N, D)``, ``factors (N, K)``.

    Unlike dlib, a constant code dim is standardised to 0 instead of NaN (dlib crashes with
    "Input X contains NaN"), and a factor with a single value in the training set is left out
    of explicitness (dlib crashes: a classifier needs two classes).
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test)
    # dlib's layout, (dims, points) views, so every reduction runs in dlib's memory order.
    mus_train, ys_train, mus_test, ys_test = codes_train.T, factors_train.T, codes_test.T, factors_test.T
    mutual_information = discrete_mutual_info(histogram_discretize(codes_train, num_bins), factors_train)
    scores = {"modularity_score": modularity(mutual_information)}
    mean = np.mean(mus_train, axis=1)
    stddev = np.std(mus_train, axis=1)
    stddev = np.where(stddev > 0, stddev, 1.0)
    mus_train_norm = (mus_train - mean[:, np.newaxis]) / stddev[:, np.newaxis]
    mus_test_norm = (mus_test - mean[:, np.newaxis]) / stddev[:, np.newaxis]
    train, test = [], []
    for i in range(ys_train.shape[0]):
        if np.unique(ys_train[i, :]).size < 2:
            continue
        roc_train, roc_test = explicitness_per_factor(mus_train_norm, ys_train[i, :], mus_test_norm, ys_test[i, :])
        train.append(roc_train)
        test.append(roc_test)
    scores["explicitness_score_train"] = float(np.mean(train)) if train else 0.0
    scores["explicitness_score_test"] = float(np.mean(test)) if test else 0.0
    return scores


def _macro_auc(clf, y: np.ndarray, proba: np.ndarray) -> float:
    mlb = preprocessing.MultiLabelBinarizer()
    onehot = mlb.fit_transform(np.expand_dims(y, 1))
    if np.array_equal(mlb.classes_, clf.classes_):
        return float(skmetrics.roc_auc_score(onehot, proba))  # dlib's call
    # dlib crashes when the set misses a class the classifier knows (or the reverse): score the
    # classifier's classes that occur in the set, macro-averaged as dlib does.
    onehot = preprocessing.MultiLabelBinarizer(classes=clf.classes_).fit_transform(
        [[c] if c in set(clf.classes_) else [] for c in y])
    keep = (onehot.sum(axis=0) > 0) & (onehot.sum(axis=0) < len(y))
    if not keep.any():
        return 0.5
    return float(skmetrics.roc_auc_score(onehot[:, keep], proba[:, keep]))


def explicitness_per_factor(mus_train, y_train, mus_test, y_test) -> tuple[float, float]:
    """ROC-AUC (train, test) of a logistic regression on ``(dims, points)`` codes, dlib's layout."""
    x_train = np.transpose(mus_train)
    x_test = np.transpose(mus_test)
    clf = linear_model.LogisticRegression().fit(x_train, y_train)
    return _macro_auc(clf, y_train, clf.predict_proba(x_train)), _macro_auc(clf, y_test, clf.predict_proba(x_test))


def modularity(mutual_information: np.ndarray) -> float:
    """Mean over code dims of 1 − δ_d; a dim with no information scores 0 (as in dlib)."""
    squared_mi = np.square(mutual_information)
    max_squared_mi = np.max(squared_mi, axis=1)
    numerator = np.sum(squared_mi, axis=1) - max_squared_mi
    denominator = max_squared_mi * (squared_mi.shape[1] - 1.)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = numerator / denominator
    if squared_mi.shape[1] == 1:
        delta = np.zeros_like(delta)  # one factor: an informative dim is trivially modular
    modularity_score = 1. - delta
    modularity_score[max_squared_mi == 0.] = 0.
    return float(np.mean(modularity_score))
