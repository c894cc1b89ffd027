"""disentanglement_lib's metrics, numerically identical to dlib 1.5 and faster.

Two ways in:

* dataset API, dlib's names and arguments (defaults are those of dlib's unsupervised study
  configs): ``gmgbench.metrics.mig.compute_mig(ground_truth_data, representation_function,
  random_state, artifact_dir=None, num_train=10000, batch_size=16)`` and friends;
* array API for codes you already have (points first, ``codes (N, D)``, ``factors (N, K)``):
  ``gmgbench.metrics.mig.mig_from_codes(codes, factors)`` and friends.

:func:`evaluate` runs several metrics on one (dataset, representation) pair, each from its own
``RandomState(random_seed)`` as dlib's ``evaluate`` does, sharing sampled codes between them.
See docs/metrics.md.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Callable, Mapping

import numpy as np

from gmgbench.metrics import sampling

__all__ = ["names", "get", "evaluate", "result_keys"]

# Metric name used in study specs and results -> (module:function, dlib's result keys).
_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "beta_vae": ("gmgbench.metrics.beta_vae:compute_beta_vae_sklearn", ("train_accuracy", "eval_accuracy")),
    "factor_vae": ("gmgbench.metrics.factor_vae:compute_factor_vae", ("train_accuracy", "eval_accuracy", "num_active_dims")),
    "dci": ("gmgbench.metrics.dci:compute_dci",
            ("informativeness_train", "informativeness_test", "disentanglement", "completeness")),
    "dci_fast": ("gmgbench.metrics.dci_fast:compute_dci_fast",
                 ("informativeness_train", "informativeness_test", "disentanglement", "completeness")),
    "mig": ("gmgbench.metrics.mig:compute_mig", ("discrete_mig",)),
    "modularity_explicitness": ("gmgbench.metrics.modularity_explicitness:compute_modularity_explicitness",
                                ("modularity_score", "explicitness_score_train", "explicitness_score_test")),
    "sap": ("gmgbench.metrics.sap_score:compute_sap", ("SAP_score",)),
    "irs": ("gmgbench.metrics.irs:compute_irs", ("IRS", "num_active_dims")),
    "geometry": ("gmgbench.metrics.geometry:compute_geometry",
                 tuple(f"{side}_{cost}_{q}" for side in ("enc", "dec") for cost in ("l2sq", "scl2sq", "cos", "ccos")
                       for q in ("dst", "gmg", "gmg_rel", "gmg_rel_ci")) + ("active_dims", "collapsed")),
    "unsupervised": ("gmgbench.metrics.unsupervised:unsupervised_metrics",
                     ("gaussian_total_correlation", "gaussian_wasserstein_correlation",
                      "gaussian_wasserstein_correlation_norm", "mutual_info_score")),
}

# Arguments every dataset-API metric takes first; not settings.
_PROTOCOL_ARGS = ("ground_truth_data", "representation_function", "random_state", "artifact_dir")


def names() -> list[str]:
    """Metric names accepted by study specs and :func:`evaluate`."""
    return list(_METRICS)


def get(name: str) -> Callable:
    """The dataset-API function of a metric name."""
    if name not in _METRICS:
        raise KeyError(f"unknown metric {name!r}; valid metrics: {', '.join(names())}")
    module, func = _METRICS[name][0].split(":")
    return getattr(importlib.import_module(module), func)


def result_keys(name: str) -> tuple[str, ...]:
    get(name)
    return _METRICS[name][1]


def settings_of(name: str) -> dict[str, object]:
    """A metric's settings and their defaults (the study values)."""
    params = inspect.signature(get(name)).parameters
    return {k: p.default for k, p in params.items() if k not in _PROTOCOL_ARGS}


def _check_settings(settings: Mapping[str, Mapping]) -> None:
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a dict of metric name -> dict of keyword arguments; got "
                        f"{type(settings).__name__}")
    for name, kwargs in settings.items():
        valid = settings_of(name)  # raises KeyError for unknown metrics
        if kwargs is None:
            continue
        if not isinstance(kwargs, Mapping):
            raise TypeError(f"settings[{name!r}] must be a dict of keyword arguments; got {type(kwargs).__name__}")
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise TypeError(f"metric {name!r} has no setting(s) {', '.join(map(repr, unknown))}; valid settings: "
                            + ", ".join(f"{k}={v!r}" for k, v in valid.items()))


def evaluate(ground_truth_data, representation_function: Callable[[np.ndarray], np.ndarray],
             settings: Mapping[str, Mapping], random_seed: int, *,
             encode_batch_size: int = sampling.DEFAULT_ENCODE_BATCH,
             on_metric: Callable[[str, int, int], None] | None = None) -> dict[str, dict[str, float]]:
    """Run each metric in ``settings`` (name -> keyword overrides of the study defaults).

    Each metric starts from its own ``np.random.RandomState(random_seed)``, like dlib's
    ``evaluation.evaluate``, so its numbers do not depend on which other metrics run. Codes
    are computed once per distinct sampled set and shared. ``representation_function`` maps a
    float32 NHWC batch to ``(B, D)`` codes (posterior means) and must be deterministic.
    ``on_metric(name, index, count)`` is called before each metric (progress displays).
    """
    _check_settings(settings)
    results: dict[str, dict[str, float]] = {}
    with sampling.shared_codes(ground_truth_data, representation_function, encode_batch_size):
        for index, (name, kwargs) in enumerate(settings.items()):
            if on_metric is not None:
                on_metric(name, index, len(settings))
            fn = get(name)
            out = fn(ground_truth_data, representation_function, np.random.RandomState(int(random_seed)),
                     **dict(kwargs or {}))
            results[name] = {k: float(v) for k, v in out.items()}
    return results
