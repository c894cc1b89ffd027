"""Disentanglement, Completeness, Informativeness (Eastwood & Williams 2018), dlib's exact mode.

One default ``GradientBoostingClassifier`` per factor predicts the factor from the codes; its
impurity-based ``feature_importances_`` form the (D, K) importance matrix R. Disentanglement is
the importance-weighted mean over codes of 1 − entropy_K(R[d, :]), completeness the weighted
mean over factors of 1 − entropy_D(R[:, k]), informativeness the mean train/test accuracy.

Faster than dlib with the same classifiers (same hyper-parameters, sklearn's own tree code):
the factors are fitted in parallel worker processes, largest number of classes first, and
inside a multi-class fit the K regression trees of each boosting stage (independent given the
stage's gradient) are fitted in parallel threads; sklearn builds trees without the GIL. The trees'
tie-breaking draws are made up front in dlib's order, from ``RandomState(tree_seed)`` instead
of dlib's global NumPy RNG: the result is reproducible, and with ``np.random.seed(tree_seed)``
before dlib's call the two agree bit for bit.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import scipy.stats
from gmgbench.metrics.validation import require_version

# Checked before the private imports below, which a newer scikit-learn may move or change.
SKLEARN_TESTED = ("1.5", "1.10")
require_version("scikit-learn", *SKLEARN_TESTED, why="metrics/dci.py and metrics/dci_fast.py use its private "
                "gradient-boosting and tree code")

# sklearn's own loss and leaf update (private, hence the pinned scikit-learn), so every tree is
# the one sklearn's GradientBoostingClassifier would fit.
from sklearn._loss.loss import HalfBinomialLoss, HalfMultinomialLoss
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.ensemble._gb import _update_terminal_regions
from sklearn.tree import DecisionTreeRegressor

from gmgbench.metrics import sampling
from gmgbench.metrics.validation import check_train_test  # noqa: E402

__all__ = ["compute_dci", "dci_from_codes", "importance_gbt", "disentanglement", "completeness", "default_n_jobs"]


def default_n_jobs() -> int:
    # A daemonic process (a `gmgbench run --workers N` worker) cannot start loky's workers:
    # joblib would warn and fall back to one job; say one job here instead. The fits give the
    # same numbers either way (each tree's seed is drawn before any fit runs).
    if multiprocessing.current_process().daemon:
        return 1
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def compute_dci(ground_truth_data, representation_function, random_state, artifact_dir=None,
                num_train: int = 10000, num_test: int = 5000, batch_size: int = 16,
                n_jobs: int | None = None, tree_seed: int | None = None) -> dict[str, float]:
    """dlib's ``compute_dci``; ``n_jobs`` workers (default: all cores) fit the classifiers.

    ``tree_seed`` seeds the trees' tie-breaking draws. dlib takes them from the global NumPy
    RNG, so ``np.random.seed(s)`` before dlib's ``compute_dci`` gives bit for bit the numbers
    of ``tree_seed=s`` here. By default the seed is drawn from ``random_state`` after sampling,
    which makes the result a function of the inputs (dlib's is not).
    """
    del artifact_dir
    codes_train, factors_train, codes_test, factors_test = sampling.train_test_codes(
        ground_truth_data, representation_function, random_state, num_train, num_test, batch_size)
    if tree_seed is None:
        # Drawn after sampling, so the sampled points stay dlib's.
        tree_seed = int(random_state.randint(np.iinfo(np.int32).max))
    return dci_from_codes(codes_train, factors_train, codes_test, factors_test, tree_seed=tree_seed,
                          n_jobs=n_jobs)


def dci_from_codes(codes_train, factors_train, codes_test, factors_test, *, tree_seed: int = 0,
                   n_jobs: int | None = None) -> dict[str, float]:
    """DCI of points-first ``codes (N, D)`` and discrete ``factors (N, K)`` (train and test sets)."""
    codes_train, factors_train, codes_test, factors_test = check_train_test(
        codes_train, factors_train, codes_test, factors_test)
    importance, train_acc, test_acc = importance_gbt(codes_train, factors_train, codes_test, factors_test,
                                                     tree_seed=tree_seed, n_jobs=n_jobs)
    return scores_from_importance(importance, train_acc, test_acc)


def scores_from_importance(importance: np.ndarray, train_acc: float, test_acc: float) -> dict[str, float]:
    return {
        "informativeness_train": float(train_acc),
        "informativeness_test": float(test_acc),
        "disentanglement": float(disentanglement(importance)),
        "completeness": float(completeness(importance)),
    }


# Below this many training points a tree takes well under a millisecond and the thread
# hand-offs cost more than they save.
_MIN_POINTS_STAGE_PARALLEL = 1000
_IDLE_WORKER_TIMEOUT_S = 5
_RAND_R_MAX = 2147483647  # sklearn.tree._utils.RAND_R_MAX: each tree fit draws randint(0, this) once


class _PresetDraw(np.random.RandomState):
    """Stands in for the shared RandomState of one tree fit, returning the draw made for it up front.

    sklearn's splitter draws ``randint(0, RAND_R_MAX)`` once per fit to seed its feature
    shuffles; drawing all of a factor's values first, in dlib's order, lets the trees fit in
    any order or in parallel and still get exactly dlib's values.
    """

    def __init__(self, value: int):
        super().__init__(0)
        self._value = int(value)

    def randint(self, low, high=None, size=None, dtype=int):
        if low == 0 and high == _RAND_R_MAX and size is None:
            return self._value
        raise RuntimeError(f"unexpected draw randint({low}, {high}, size={size}) by sklearn's tree; "
                           "gmgbench.metrics.dci was written for scikit-learn's tree code of 1.5-1.9")


class _PresetGBC(GradientBoostingClassifier):
    """sklearn's default GradientBoostingClassifier; per-stage trees fit in a pool, seeds preset.

    Given the stage's gradient, the tree of class k reads gradient column k and writes
    raw_predictions[:, k] only, so the K trees of a stage are independent.
    """

    _draws: np.ndarray
    _pool: ThreadPoolExecutor | None = None

    def _fit_stage(self, i, X, y, raw_predictions, sample_weight, sample_mask, random_state,
                   X_csc=None, X_csr=None):
        if X_csc is not None or self.subsample < 1.0 or not isinstance(
                self._loss, (HalfMultinomialLoss, HalfBinomialLoss)):
            raise RuntimeError("gmgbench.metrics.dci supports only the default GradientBoostingClassifier on dense data")
        num_trees = self.n_trees_per_iteration_
        multiclass = self._loss.is_multiclass
        neg_gradient = -self._loss.gradient(y_true=y, raw_prediction=raw_predictions, sample_weight=None)
        neg_g = neg_gradient.reshape((-1, 1)) if neg_gradient.ndim == 1 else neg_gradient
        # One stand-in per class, reused stage after stage (seeding a RandomState per tree
        # costs more than a small tree's fit).
        if getattr(self, "_stand_ins", None) is None or len(self._stand_ins) != num_trees:
            self._stand_ins = [_PresetDraw(0) for _ in range(num_trees)]
        for k, stand_in in enumerate(self._stand_ins):
            stand_in._value = int(self._draws[i * num_trees + k])

        def fit_tree(k: int) -> DecisionTreeRegressor:
            tree = DecisionTreeRegressor(
                criterion="squared_error", splitter="best", max_depth=self.max_depth,
                min_samples_split=self.min_samples_split, min_samples_leaf=self.min_samples_leaf,
                min_weight_fraction_leaf=self.min_weight_fraction_leaf,
                min_impurity_decrease=self.min_impurity_decrease, max_features=self.max_features,
                max_leaf_nodes=self.max_leaf_nodes, random_state=self._stand_ins[k],
                ccp_alpha=self.ccp_alpha)
            tree.fit(X, neg_g[:, k], sample_weight=sample_weight, check_input=False)
            y_k = np.array(y == k, dtype=np.float64) if multiclass else y
            _update_terminal_regions(self._loss, tree.tree_, X, y_k, neg_g[:, k], raw_predictions,
                                     sample_weight, sample_mask, learning_rate=self.learning_rate, k=k)
            return tree

        parallel = self._pool is not None and num_trees > 1 and X.shape[0] >= _MIN_POINTS_STAGE_PARALLEL
        trees = self._pool.map(fit_tree, range(num_trees)) if parallel else map(fit_tree, range(num_trees))
        for k, tree in enumerate(trees):
            self.estimators_[i, k] = tree
        return raw_predictions


def _fit_factor(x_train, y_train, x_test, y_test, draws, stage_threads: int) -> tuple[np.ndarray, float, float]:
    classes = np.unique(y_train)
    if classes.size < 2:
        # dlib crashes here (a classifier needs two classes); the factor is constant in the
        # training sample, so no code explains it and the constant prediction is its accuracy.
        return np.zeros(x_train.shape[1]), 1.0, float(np.mean(y_test == classes[0]))
    model = _PresetGBC(random_state=0)
    model._draws = draws
    if stage_threads > 1:
        with ThreadPoolExecutor(stage_threads) as pool:
            model._pool = pool
            model.fit(x_train, y_train)
        model._pool = None
    else:
        model.fit(x_train, y_train)
    return (np.abs(model.feature_importances_), float(np.mean(model.predict(x_train) == y_train)),
            float(np.mean(model.predict(x_test) == y_test)))


def _trees_per_fit(y: np.ndarray, n_estimators: int = 100) -> int:
    n = np.unique(y).size
    return 0 if n < 2 else n_estimators * (1 if n == 2 else n)


def importance_gbt(codes_train, factors_train, codes_test, factors_test, *, tree_seed: int = 0,
                   n_jobs: int | None = None) -> tuple[np.ndarray, float, float]:
    """``(R (D, K), mean train accuracy, mean test accuracy)`` from one default GBC per factor.

    The trees draw their seeds, factor after factor, from ``RandomState(tree_seed)``, as dlib's
    draw from the global RNG; the fits then run in ``n_jobs`` worker processes.
    """
    n_jobs = default_n_jobs() if n_jobs is None else max(1, int(n_jobs))
    num_factors = factors_train.shape[1]
    seeder = np.random.RandomState(tree_seed)
    draws = [seeder.randint(0, _RAND_R_MAX, size=_trees_per_fit(factors_train[:, j])) for j in range(num_factors)]
    # Longest fits (most trees) first: LPT scheduling of the factor pool.
    order = sorted(range(num_factors), key=lambda j: -draws[j].size)
    x_train = np.ascontiguousarray(codes_train)
    x_test = np.ascontiguousarray(codes_test)
    args = [(x_train, factors_train[:, j], x_test, factors_test[:, j], draws[j]) for j in order]
    if n_jobs == 1 or x_train.shape[0] < _MIN_POINTS_STAGE_PARALLEL:
        fitted = [_fit_factor(*a, stage_threads=1) for a in args]
    else:
        # Factors in worker processes (no GIL between them: threads alone stall on a busy
        # machine when the thread holding the GIL is descheduled), each splitting its stages
        # over threads so that the last, largest fits still use every core.
        # Idle workers leave after a few seconds instead of loky's 300: a process that
        # evaluated a model (a `gmgbench run` worker) otherwise waits that long to exit.
        with joblib.parallel_config(backend="loky", idle_worker_timeout=_IDLE_WORKER_TIMEOUT_S):
            fitted = joblib.Parallel(n_jobs=min(n_jobs, len(args)), batch_size=1)(
                joblib.delayed(_fit_factor)(*a, stage_threads=n_jobs) for a in args)
    results = dict(zip(order, fitted))
    importance = np.stack([results[j][0] for j in range(num_factors)], axis=1)
    train_acc = np.mean([results[j][1] for j in range(num_factors)])
    test_acc = np.mean([results[j][2] for j in range(num_factors)])
    return importance, float(train_acc), float(test_acc)


def _one_minus_entropy(p: np.ndarray, base: int) -> np.ndarray:
    # dlib's 1e-11 floor keeps an all-zero column defined (uniform, entropy 1); with base 1
    # (a single code or factor) the entropy is 0/0, which we define as perfectly concentrated.
    if base < 2:
        return np.ones(p.shape[1])
    return 1.0 - scipy.stats.entropy(p + 1e-11, base=base)


def disentanglement(importance: np.ndarray) -> float:
    """Importance-weighted mean over codes of 1 − H_K(R[d, :] / ΣR[d, :])."""
    per_code = _one_minus_entropy(importance.T, importance.shape[1])
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    code_importance = importance.sum(axis=1) / importance.sum()
    return float(np.sum(per_code * code_importance))


def completeness(importance: np.ndarray) -> float:
    """Importance-weighted mean over factors of 1 − H_D(R[:, k] / ΣR[:, k])."""
    per_factor = _one_minus_entropy(importance, importance.shape[0])
    if importance.sum() == 0.0:
        importance = np.ones_like(importance)
    factor_importance = importance.sum(axis=0) / importance.sum()
    return float(np.sum(per_factor * factor_importance))
