"""disentanglement_lib's metrics, numerically identical to dlib 1.5 and faster.

Two ways in:

* dataset API, dlib's names and arguments (defaults are those of dlib's unsupervised study
  configs): ``gmgbench.metrics.mig.compute_mig(ground_truth_data, representation_function,
  random_state, artifact_dir=None, num_train=10000, batch_size=16)`` and friends;
* array API for codes you already have (points first, ``codes (N, D)``, ``factors (N, K)``):
  ``gmgbench.metrics.mig.mig_from_codes(codes, factors)`` and friends.

:func:`evaluate` runs several metrics on one (dataset, representation) pair, each from its own
``RandomState(random_seed)`` as dlib's ``evaluate`` does, sharing sampled codes between them.
What each metric is (keys, direction, dlib's name, sizes, cost) is declared once in
:mod:`gmgbench.metrics.table`; a plugin adds one with :func:`register`. See docs/metrics.md
and docs/new-metric.md.
"""
from __future__ import annotations

import inspect
from typing import Callable, Mapping

import numpy as np

from gmgbench.metrics import sampling, table
from gmgbench.metrics.table import Metric, MetricError, declaration, register

__all__ = ["names", "get", "evaluate", "result_keys", "settings_of", "Metric", "MetricError", "register",
           "declaration"]

# Arguments every dataset-API metric takes first; not settings.
_PROTOCOL_ARGS = ("ground_truth_data", "representation_function", "random_state", "artifact_dir")


def names() -> list[str]:
    """Metric names accepted by study specs and :func:`evaluate` (built-ins, then plugins)."""
    return [m.name for m in table.declarations()]


def get(name: str) -> Callable:
    """The dataset-API function of a metric name."""
    return declaration(name).function()


def result_keys(name: str) -> tuple[str, ...]:
    return declaration(name).keys


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
