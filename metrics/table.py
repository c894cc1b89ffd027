"""The metric table: what a metric is, declared once.

Each metric is one :class:`Metric`: its name in study specs and results, the function that
computes it, the result keys it returns, which direction is better for each key, dlib's name
for it (its ``evaluation.name`` and metric folder), its sample-size settings and their
defaults, and its cost class. Everything that needs one of these reads it here: the
evaluation (:mod:`gmgbench.metrics`), the spec's checks, the boards (direction) and the dlib
export (names).

Three sources, as for methods (``methods/registry.py``): the built-ins below; a plugin file
that calls :func:`register` (named in a study spec's ``plugins:``, loaded by the harness in
every process); and the entry-point group ``gmgbench.metrics`` of installed packages, each a
module that registers on import or a ``module:attr`` naming a :class:`Metric`. See
``docs/new-metric.md``.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
import logging
import types
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

__all__ = ["Metric", "MetricError", "BUILTINS", "COSTS", "ENTRY_POINT_GROUP", "register", "declaration",
           "declarations", "origin", "direction", "loading", "load_entry_points", "isolated"]

ENTRY_POINT_GROUP = "gmgbench.metrics"
# cheap: histograms, closed forms or one linear model of the sampled codes; costly: fits a model
# per factor (trees, SVMs, logistic regressions) or solves an optimal-transport problem per batch.
# It describes the work, not a measured time.
COSTS = ("cheap", "costly")
log = logging.getLogger(__name__)


class MetricError(ValueError):
    """An invalid metric declaration or plugin; the message names the file."""


@dataclass(frozen=True)
class Metric:
    """One metric. ``keys`` are the result keys ``compute`` returns; each is higher-is-better
    unless listed in ``lower`` (lower is better) or ``counts`` (not a score: never ranked or
    bolded). ``dlib_name`` is dlib's name for the metric, None where dlib has none.
    ``sizes`` are the sample-size settings with their defaults, as ``compute``'s signature
    has them. ``compute`` is ``"module:function"`` or, in a plugin file, the function itself,
    with dlib's dataset-API signature ``(ground_truth_data, representation_function,
    random_state, artifact_dir=None, **settings) -> {key: value}``."""

    name: str
    compute: str | Callable[..., Mapping[str, float]]
    keys: tuple[str, ...]
    dlib_name: str | None
    sizes: Mapping[str, int] = field(hash=False)
    cost: str
    lower: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "lower", tuple(self.lower))
        object.__setattr__(self, "counts", tuple(self.counts))
        object.__setattr__(self, "sizes", types.MappingProxyType(dict(self.sizes)))

    def function(self) -> Callable[..., Mapping[str, float]]:
        """The dataset-API function (imported on first use for a ``module:function``)."""
        if callable(self.compute):
            return self.compute
        module, _, attr = self.compute.partition(":")
        return getattr(importlib.import_module(module), attr)

    def direction(self, key: str) -> int:
        """+1 higher is better, −1 lower is better, 0 not a score."""
        if key not in self.keys:
            raise KeyError(f"metric {self.name!r} has no result key {key!r}; its keys: {', '.join(self.keys)}")
        return 0 if key in self.counts else -1 if key in self.lower else 1

    def check(self, where: str) -> None:
        """What a declaration most often gets wrong, named with ``where``."""
        def bad(text: str) -> MetricError:
            return MetricError(f"{where}: metric {self.name!r}: {text}")

        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise MetricError(f"{where}: a metric's name must be a Python identifier, got {self.name!r}")
        if not self.keys or not all(isinstance(k, str) and k for k in self.keys) or len(set(self.keys)) < len(self.keys):
            raise bad(f"keys must be distinct non-empty names, got {self.keys!r}")
        for attr in ("lower", "counts"):
            stray = [k for k in getattr(self, attr) if k not in self.keys]
            if stray:
                raise bad(f"{attr} names {', '.join(map(repr, stray))}, not among its keys ({', '.join(self.keys)})")
        both = set(self.lower) & set(self.counts)
        if both:
            raise bad(f"{', '.join(map(repr, sorted(both)))} is listed both as lower-is-better and as a count")
        if self.dlib_name is not None and not (isinstance(self.dlib_name, str) and self.dlib_name):
            raise bad(f"dlib_name must be dlib's metric name or None, got {self.dlib_name!r}")
        if self.cost not in COSTS:
            raise bad(f"cost must be one of {', '.join(COSTS)}, got {self.cost!r}")
        try:
            fn = self.function()
        except (ImportError, AttributeError, ValueError) as err:
            raise bad(f"compute {self.compute!r} cannot be imported: {type(err).__name__}: {err}") from err
        if not callable(fn):
            raise bad(f"compute {self.compute!r} is not a function")
        params = inspect.signature(fn).parameters
        for size, default in self.sizes.items():
            if size not in params or params[size].default != default:
                have = f"{params[size].default!r}" if size in params else "no such parameter"
                raise bad(f"sizes[{size!r}] = {default!r} but {getattr(fn, '__name__', fn)} has {have}; "
                          "declare the signature's defaults")


def _keys(*groups: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(k for g in groups for k in g)


_DLIB_SIZES = {"num_train": 10000, "batch_size": 16}  # dlib's unsupervised study configs
_DCI_KEYS = ("informativeness_train", "informativeness_test", "disentanglement", "completeness")
_GEOMETRY_KEYS = tuple(f"{side}_{cost}_{q}" for side in ("enc", "dec") for cost in ("l2sq", "scl2sq", "cos", "ccos")
                       for q in ("dst", "gmg", "gmg_rel", "gmg_rel_ci"))

# In this order: specs, results and the did-you-mean lists name metrics in it.
BUILTINS: tuple[Metric, ...] = (
    Metric("beta_vae", "gmgbench.metrics.beta_vae:compute_beta_vae_sklearn", ("train_accuracy", "eval_accuracy"),
           dlib_name="beta_vae_sklearn", sizes={"batch_size": 64, "num_train": 10000, "num_eval": 5000}, cost="cheap"),
    Metric("factor_vae", "gmgbench.metrics.factor_vae:compute_factor_vae",
           ("train_accuracy", "eval_accuracy", "num_active_dims"), dlib_name="factor_vae_metric",
           sizes={"batch_size": 64, "num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000},
           cost="cheap", counts=("num_active_dims",)),
    Metric("dci", "gmgbench.metrics.dci:compute_dci", _DCI_KEYS, dlib_name="dci",
           sizes={**_DLIB_SIZES, "num_test": 5000}, cost="costly"),
    Metric("dci_fast", "gmgbench.metrics.dci_fast:compute_dci_fast", _DCI_KEYS, dlib_name="dci",
           sizes={**_DLIB_SIZES, "num_test": 5000}, cost="costly"),
    Metric("mig", "gmgbench.metrics.mig:compute_mig", ("discrete_mig",), dlib_name="mig", sizes=_DLIB_SIZES,
           cost="cheap"),
    Metric("modularity_explicitness", "gmgbench.metrics.modularity_explicitness:compute_modularity_explicitness",
           ("modularity_score", "explicitness_score_train", "explicitness_score_test"),
           dlib_name="modularity_explicitness", sizes={**_DLIB_SIZES, "num_test": 5000}, cost="costly"),
    Metric("sap", "gmgbench.metrics.sap_score:compute_sap", ("SAP_score",), dlib_name="sap_score",
           sizes={**_DLIB_SIZES, "num_test": 5000}, cost="costly"),
    Metric("irs", "gmgbench.metrics.irs:compute_irs", ("IRS", "num_active_dims"), dlib_name="irs",
           sizes=_DLIB_SIZES, cost="cheap", counts=("num_active_dims",)),
    # Distortion and gap: lower is better; the interval's half-width, the active count and the
    # collapse flag are not scores.
    Metric("geometry", "gmgbench.metrics.geometry:compute_geometry", _keys(_GEOMETRY_KEYS, ("active_dims", "collapsed")),
           dlib_name=None, sizes={"num_batches": 8, "batch_size": 64}, cost="costly",
           lower=tuple(k for k in _GEOMETRY_KEYS if not k.endswith("_ci")),
           counts=_keys(tuple(k for k in _GEOMETRY_KEYS if k.endswith("_ci")), ("active_dims", "collapsed"))),
    # dlib's unsupervised scores measure dependence between codes: lower is more disentangled.
    Metric("unsupervised", "gmgbench.metrics.unsupervised:unsupervised_metrics",
           ("gaussian_total_correlation", "gaussian_wasserstein_correlation", "gaussian_wasserstein_correlation_norm",
            "mutual_info_score"), dlib_name="unsupervised", sizes=_DLIB_SIZES, cost="cheap",
           lower=("gaussian_total_correlation", "gaussian_wasserstein_correlation",
                  "gaussian_wasserstein_correlation_norm", "mutual_info_score")),
)


class _Table:
    """Declarations by name, each with the file (or entry point) it came from."""

    def __init__(self, builtins: tuple[Metric, ...]):
        self.metrics: dict[str, Metric] = {m.name: m for m in builtins}
        self.origin: dict[str, str] = {m.name: "metrics/table.py" for m in builtins}
        self.files: dict[str, list[str]] = {}  # plugin file or entry point -> the names it registered
        self.loading_from: list[str] = []
        self.entry_points: set[str] = set()
        self.broken: dict[str, str] = {}


_TABLE = _Table(BUILTINS)


def register(metric: Metric) -> Metric:
    """Add a plugin's metric (call it at the top level of the plugin file). Checks the
    declaration (see :meth:`Metric.check`) and that the name is not taken, naming the file."""
    where = _TABLE.loading_from[-1] if _TABLE.loading_from else "<register() outside a plugin file>"
    if not isinstance(metric, Metric):
        raise MetricError(f"{where}: register() takes a gmgbench.metrics.Metric, got {type(metric).__name__}")
    metric.check(where)
    taken = _TABLE.metrics.get(metric.name)
    if taken is not None and taken is not metric:
        raise MetricError(f"{where}: metric name {metric.name!r} is already registered by "
                          f"{_TABLE.origin[metric.name]}; choose another name")
    _TABLE.metrics[metric.name] = metric
    _TABLE.origin[metric.name] = where
    if _TABLE.loading_from and where in _TABLE.files:
        _TABLE.files[where].append(metric.name)
    return metric


def declaration(name: str) -> Metric:
    if name not in _TABLE.metrics:
        broken = "".join(f"; {line}" for line in _TABLE.broken.values())
        raise KeyError(f"unknown metric {name!r}; valid metrics: {', '.join(_TABLE.metrics)}{broken}")
    return _TABLE.metrics[name]


def declarations() -> tuple[Metric, ...]:
    """Every registered metric: the built-ins in their order, then plugins as loaded."""
    return tuple(_TABLE.metrics.values())


def origin(name: str) -> str:
    """The file or entry point that declared a metric."""
    declaration(name)
    return _TABLE.origin[name]


def direction(column: str) -> int | None:
    """``<metric>.<key>``'s direction (+1, −1, 0), None for a column no registered metric has."""
    mname, _, key = column.partition(".")
    metric = _TABLE.metrics.get(mname)
    return metric.direction(key) if metric is not None and key in metric.keys else None


@contextlib.contextmanager
def loading(label: str) -> Iterator[list[str]]:
    """Whatever :func:`register` adds inside the block is ``label``'s (the yielded list of
    names); on any error all of it is dropped. The harness wraps each plugin file in it."""
    if label in _TABLE.files:  # loaded before: a second load of a file is a no-op
        yield list(_TABLE.files[label])
        return
    added = _TABLE.files.setdefault(label, [])
    _TABLE.loading_from.append(label)
    try:
        yield added
    except BaseException:
        for name in _TABLE.files.pop(label):
            _TABLE.metrics.pop(name, None)
            _TABLE.origin.pop(name, None)
        raise
    finally:
        _TABLE.loading_from.pop()


def load_entry_points(warn: bool = True) -> list[str]:
    """Load the ``gmgbench.metrics`` entry points, once per process; returns the names added.
    A package that fails (import error, invalid declaration, taken name) keeps nothing
    registered and is one warning naming it (``warn=False``: only recorded), so studies that
    do not use it are unaffected, as for methods."""
    from gmgbench.methods.registry import load_entry_point_group  # late: importing a metric needs no torch

    def load_one(ep, label: str) -> list[str]:
        with loading(label) as names:
            obj = ep.load()
            if isinstance(obj, Metric) and obj.name not in names:
                register(obj)
        return _TABLE.files.pop(label)

    return load_entry_point_group(ENTRY_POINT_GROUP, _TABLE.entry_points, load_one, MetricError, "metrics",
                                  _TABLE.broken, warn)


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run a block with a private copy of the table (tests of metric plugins)."""
    global _TABLE
    saved = _TABLE
    _TABLE = _Table(())
    for attr, value in vars(saved).items():
        setattr(_TABLE, attr, value.copy() if hasattr(value, "copy") else value)
    try:
        yield
    finally:
        _TABLE = saved
