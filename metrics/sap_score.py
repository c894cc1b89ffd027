"""Separated Attribute Predictability (Kumar et al. 2018, "Variational Inference of Disentangled
Latent Concepts from Unlabeled Observations").

Score matrix S[d, k]: test accuracy of a linear SVM (C=0.01, balanced classes) predicting
factor k from code dim d alone (or, for continuous factors, the squared correlation). SAP is the
mean over factors of the gap between the two best dims. Known weakness: since each classifier
sees one dim, a perfect identity code of a many-valued factor scores low.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn import svm

from gmgbench.metrics import sampling
from gmgbench.metrics.dci import default_n_jobs
from gmgbench.metrics.validation import check_train_test

__all__ = ["compute_sap", "sap_from_codes", "compute_score_matrix"]


def compute_sap(ground_truth_data, representation_function, random_state, artifact_dir=None,
                num_train: int = 10000, num_test: int = 5000, batch_size: int = 16,
                continuous_factors: bool = False, n_jobs: int | None = None) -> dict[str, float]:
    """dlib's ``compute_sap``; the (dim, factor) classifiers fit in ``n_jobs`` threads."""
    del artifact_dir
    codes, factors, codes_test, factors_test = sampling.train_test_codes(
        ground_truth_data, representation_function, random_state, num_train, num_test, batch_size)
    return sap_from_codes(codes, factors, codes_test, factors_test, continuous_factors=continuous_factors,
                          n_jobs=n_jobs)


def sap_from_codes(codes_train, factors_train, codes_test, factors_test, continuous_factors: bool = False,
                   n_jobs: int | None = None) -> dict[str, float]:
    """``{"SAP_score": ...}`` of points-first codes and factors.

    Unlike dlib, one code dim is allowed (its runner-up scores 0) and a factor constant in the
    training set scores 0 instead of crashing the SVM.
    """
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test)
    matrix = compute_score_matrix(codes_train.T, factors_train.T, codes_test.T, factors_test.T,
                                  continuous_factors, n_jobs=n_jobs)
    sorted_matrix = np.sort(matrix, axis=0)
    runner_up = sorted_matrix[-2, :] if sorted_matrix.shape[0] > 1 else np.zeros(sorted_matrix.shape[1])
    return {"SAP_score": float(np.mean(sorted_matrix[-1, :] - runner_up))}


def _score(mu_i, y_j, mu_i_test, y_j_test, continuous: bool) -> float:
    if continuous:
        cov = np.cov(mu_i, y_j, ddof=1)
        var_mu = cov[0, 0]
        return cov[0, 1] ** 2 * 1. / (var_mu * cov[1, 1]) if var_mu > 1e-12 else 0.
    if np.unique(y_j).size < 2:
        return 0.
    # random_state=0: liblinear's primal solver (dual="auto" picks it for 1 feature) ignores
    # the seed, and a fixed seed keeps dlib's draw from the global RNG out of it.
    classifier = svm.LinearSVC(C=0.01, class_weight="balanced", random_state=0)
    classifier.fit(mu_i[:, np.newaxis], y_j)
    pred = classifier.predict(mu_i_test[:, np.newaxis])
    return float(np.mean(pred == y_j_test))


def compute_score_matrix(mus, ys, mus_test, ys_test, continuous_factors: bool, n_jobs: int | None = None
                         ) -> np.ndarray:
    """``(D, K)`` score matrix from dlib-layout ``(dims, points)`` arrays."""
    num_latents, num_factors = mus.shape[0], ys.shape[0]
    pairs = [(i, j) for i in range(num_latents) for j in range(num_factors)]
    n_jobs = default_n_jobs() if n_jobs is None else max(1, int(n_jobs))

    def run(pair):
        i, j = pair
        return _score(mus[i, :], ys[j, :], mus_test[i, :], ys_test[j, :], continuous_factors)

    if n_jobs == 1 or continuous_factors:
        values = list(map(run, pairs))
    else:
        with ThreadPoolExecutor(n_jobs) as pool:
            values = list(pool.map(run, pairs))
    return np.array(values, dtype=np.float64).reshape(num_latents, num_factors)
