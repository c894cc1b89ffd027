"""Study specs: a YAML file → validated :class:`StudySpec` → one :class:`RunSpec` per run.

A study is datasets × methods (each with hyperparameter grids) × seeds, under shared
training and evaluation settings. The spec is checked once, when it loads, and completely:
exact types (an int where an int is meant; a bool is no int, ``"3"`` is no number), no
empty grid, every method parameter through the method's own ``Config`` (built here, once,
and carried to training), every metric setting against the metric, the Slurm resources,
the leaderboard block (selection protocol, claims, references) and the cross-checks (the
selection column is computed by this study). Every error is one :class:`SpecError` line
naming the file and the key; nothing trains first.

The tree (frozen dataclasses): :class:`StudySpec` → :class:`MethodSpec` (its resolved
:class:`TrainSettings`, the objective's and each :class:`RegulariserSpec`'s grid of
:class:`GridPoint`, each with its built ``Config``) → :func:`expand` → :class:`RunSpec`.
The sections that are hashed or published keep the values as written (``train``,
``evaluation``, ``leaderboard``, ``resources``, ``params``), so the run id is a hash of
everything that determines a run's result as the user wrote it, and a rerun of the same
spec finds the runs it already finished. ``evaluation``, ``leaderboard`` and ``resources``
are typed and read-only besides (:mod:`gmgbench.harness.sections`: :class:`EvaluationSpec`,
:class:`LeaderboardSpec` with the leaderboard's ``Options`` checked here, :class:`FrozenMap`);
each gives its block back as written (``to_dict()``) for the hashes. :func:`spec_to_dict` / :func:`spec_from_dict` /
:func:`spec_hash` are the spec as data (a release's manifest).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from gmgbench.harness.errors import UserError, check_keys, did_you_mean
from gmgbench.harness.fileio import load_yaml
from gmgbench.harness.sections import EvaluationSpec, FrozenMap, LeaderboardSpec, frozen_map, thaw

__all__ = ["SpecError", "check_metric_settings", "StudySpec", "MethodSpec", "RegulariserSpec", "GridPoint", "RunSpec",
           "TrainSettings", "EvaluationSpec", "LeaderboardSpec", "FrozenMap", "load_spec", "parse_spec", "expand",
           "spec_to_dict", "spec_from_dict", "spec_hash"]


class SpecError(UserError, ValueError):
    """The study spec is invalid; the message names the file and the key."""


_MAX_NAME = 100  # the study's folders and release files stay far below a file system's 255


def _fail(where: str, key: str, msg: str) -> SpecError:
    return SpecError(f"{where}: {key}: {msg}")


def _check_keys(where: str, prefix: str, got: dict, valid: Iterable[str]) -> None:
    check_keys(f"{where}: {prefix}", got, valid, error=SpecError)


# -- exact types ---------------------------------------------------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _text_hint(value: Any) -> str:
    # YAML 1.1 (PyYAML) reads 1e-4 without a dot as text, a common surprise.
    return " (YAML reads 1e-4 as text: write 1.0e-4 or 0.0001)" if isinstance(value, str) and "e" in value.lower() else ""


def _int(where: str, key: str, value: Any, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise _fail(where, key, f"expected {what}, got {value!r}")
    return value


def _number(where: str, key: str, value: Any, *, positive: bool = False) -> float:
    if not _is_number(value) or not math.isfinite(value) or (positive and value <= 0):
        what = "a positive number" if positive else "a number"
        raise _fail(where, key, f"expected {what}, got {value!r}{_text_hint(value)}")
    return value


def _mapping(where: str, key: str, value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, key, f"expected a mapping of {what}, got {value!r}")
    return dict(value)


def _list(where: str, key: str, value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, key, f"expected a list of {what}, got {value!r}")
    return value


# -- training ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainSettings:
    """Training settings shared by every run of a study (overridable per method)."""

    steps: int = 300_000
    batch_size: int = 64
    lr: float = 1e-4
    latent_dim: int = 10
    checkpoint_every: int = 1000
    log_every: int = 100
    device: str = "auto"  # auto | cpu | cuda
    num_threads: int = 0  # torch threads per run; 0 keeps torch's default
    # The model's and batches' memory layout on CPU/GPU convolutions. channels_last is ~1.25x
    # faster per CPU step (docs/performance.md) but not bitwise equal to contiguous, so it
    # enters the run id when set, and the default stays contiguous: finished runs keep their
    # numbers.
    memory_format: str = "contiguous"  # contiguous | channels_last
    # Regulariser health (harness/health.py): measure each term's gradient share every this
    # many steps; 0 turns the measurement off. It never changes a run's numbers.
    health_every: int = 50

    def __post_init__(self):
        for key in ("steps", "batch_size", "latent_dim", "checkpoint_every", "log_every"):
            if getattr(self, key) <= 0:
                raise ValueError(f"{key} must be > 0, got {getattr(self, key)}")
        if self.health_every < 0:
            raise ValueError(f"health_every must be >= 0, got {self.health_every}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be contiguous or channels_last, got {self.memory_format!r}")

    @classmethod
    def check(cls, where: str, prefix: str, raw: Any) -> dict[str, Any]:
        """``raw`` (a ``train:`` block, possibly partial) with every value of its exact type;
        returned as written (the run id hashes the values as written)."""
        raw = _mapping(where, prefix.rstrip("."), raw, "training settings")
        _check_keys(where, prefix, raw, [f.name for f in dataclasses.fields(cls)])
        for key, value in raw.items():
            if key == "lr":
                _number(where, prefix + key, value, positive=True)
            elif key == "device":
                if value not in ("auto", "cpu", "cuda"):
                    raise _fail(where, prefix + key, f"expected auto, cpu or cuda, got {value!r}")
            elif key == "memory_format":
                if value not in MEMORY_FORMATS:
                    raise _fail(where, prefix + key, f"expected contiguous or channels_last, got {value!r}")
            else:
                _int(where, prefix + key, value, 0 if key in ("num_threads", "health_every") else 1)
        return raw


# Only these affect a run's numbers; the rest (logging, checkpoints, device choice,
# threads) do not enter the run id, so changing them never orphans finished runs.
_RESULT_KEYS = ("steps", "batch_size", "lr", "latent_dim")
# These change a run's numbers only when set away from their default, so they enter the run
# id only then: adding one never moved the id of a run that does not use it.
_RESULT_KEYS_IF_SET = {"memory_format": "contiguous"}
MEMORY_FORMATS = ("contiguous", "channels_last")

_TOP_KEYS = {
    "name": "study name (used for results/<name>/ and leaderboards/<name>/)",
    "description": "free text",
    "datasets": "list of dataset names or {name, root}",
    "methods": "list of methods",
    "seeds": "list of ints, or an int n for seeds 0..n-1",
    "train": "training settings",
    "evaluation": "metrics and sizes",
    "plugins": "method and metric files to load, relative to the spec",
    "leaderboard": "leaderboard settings",
    "resources": "default Slurm resources for every run",
    "callbacks": "run callbacks (experiment tracking): [tensorboard, {name: module:attr, params: {...}}]",
    "external": "models trained elsewhere, in disentanglement_lib's format: [{name, path, dataset}]",
}
_METHOD_KEYS = {"label", "objective", "params", "regularisers", "train", "resources", "reference"}
_REG_KEYS = {"name", "params"}
_EVAL_KEYS = {"metrics", "seed"}
_DATASET_KEYS = {"name", "root"}


# -- the tree --------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridPoint:
    """One combination of a method's parameter grid: the values as written (hashed into the
    run id) and the method's ``Config`` built from them at load (None when the spec was
    parsed without checking methods)."""

    params: FrozenMap
    config: Any = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "params", frozen_map(self.params))


@dataclass(frozen=True)
class RegulariserSpec:
    name: str
    params: FrozenMap  # as written: a list value (frozen as a tuple) is a grid axis
    grid: tuple[GridPoint, ...] = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "params", frozen_map(self.params))

    def points(self) -> tuple[GridPoint, ...]:
        return self.grid or tuple(GridPoint(p) for p in _grid(self.params))


@dataclass(frozen=True)
class MethodSpec:
    """One method entry: an objective and regularisers, each with a parameter grid."""

    label: str
    objective: str
    params: FrozenMap  # as written: a list value (frozen as a tuple) is a grid axis
    regularisers: tuple[RegulariserSpec, ...] = ()
    train: FrozenMap = field(default_factory=FrozenMap)  # overrides of the study's, as written
    resources: FrozenMap = field(default_factory=FrozenMap)  # submitit parameters, over the study's
    reference: FrozenMap = field(default_factory=FrozenMap)  # as written; typed: spec.leaderboard.references
    grid: tuple[GridPoint, ...] = field(default=(), compare=False)  # the objective's, with built Configs

    def __post_init__(self):
        for key in ("params", "train", "resources", "reference"):
            object.__setattr__(self, key, frozen_map(getattr(self, key)))

    def points(self) -> tuple[GridPoint, ...]:
        return self.grid or tuple(GridPoint(p) for p in _grid(self.params))


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run needs. Frozen and picklable (submitit ships it).

    The methods' built Configs ride along (:meth:`method_configs`) but are never pickled
    or serialised: a fresh process rebuilds them from the parameters, after loading the
    study's plugins."""

    study: str
    dataset: str
    dataset_root: str | None
    method: str  # the method's label in the leaderboard
    objective: str
    objective_params: dict[str, Any]
    regularisers: tuple[tuple[str, dict[str, Any]], ...]
    seed: int
    train: TrainSettings
    evaluation: EvaluationSpec  # both keys (metrics, seed), the settings as written
    resources: FrozenMap = field(default_factory=FrozenMap, compare=False)

    def result_config(self) -> dict[str, Any]:
        """The part of the config that determines the result (hashed into the run id)."""
        return {
            "dataset": self.dataset,
            "objective": {"name": self.objective, "params": self.objective_params},
            "regularisers": [{"name": n, "params": p} for n, p in self.regularisers],
            "seed": self.seed,
            "train": {**{k: getattr(self.train, k) for k in _RESULT_KEYS},
                      **{k: getattr(self.train, k) for k, default in _RESULT_KEYS_IF_SET.items()
                         if getattr(self.train, k) != default}},
            "evaluation": self.evaluation.to_dict(),
        }

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.result_config(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def method_configs(self) -> tuple[Any, tuple[Any, ...]]:
        """(the objective's Config, each regulariser's Config): built when the spec loaded,
        or here, once per process, for a run that travelled without them."""
        cached = self.__dict__.get("_configs")
        if cached is None:
            from gmgbench.methods import registry

            cached = (registry.make_config(registry.get(self.objective, "objective"), self.objective_params),
                      tuple(registry.make_config(registry.get(n, "regulariser"), p) for n, p in self.regularisers))
            object.__setattr__(self, "_configs", cached)
        return cached

    def __getstate__(self) -> dict[str, Any]:
        # A plugin's Config class may not be importable where this run is unpickled.
        return {k: v for k, v in self.__dict__.items() if k != "_configs"}

    @property
    def hyperparams(self) -> dict[str, Any]:
        """Flat ``{objective.param: v, reg.param: v}`` of every parameter of this run."""
        flat = {f"{self.objective}.{k}": v for k, v in self.objective_params.items()}
        for name, params in self.regularisers:
            flat.update({f"{name}.{k}": v for k, v in params.items()})
        return flat

    @property
    def setting(self) -> str:
        """Readable hyperparameter setting, e.g. ``beta=4,gmg.weight=10`` (no seed)."""
        parts = [f"{k.split('.', 1)[1] if k.startswith(self.objective + '.') else k}={v}" for k, v in sorted(self.hyperparams.items())]
        return ",".join(parts)

    @property
    def name(self) -> str:
        return f"{self.method}[{self.setting}]@{self.dataset}/seed={self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (a run record's ``config``), in field order."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        d["regularisers"] = [{"name": n, "params": copy.deepcopy(p)} for n, p in self.regularisers]
        d["train"] = dataclasses.asdict(self.train)
        d["evaluation"] = self.evaluation.to_dict()
        d["resources"] = self.resources.to_dict()
        d["run_id"] = self.run_id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        d = dict(d)
        d.pop("run_id", None)
        d["train"] = TrainSettings(**d["train"])
        d["regularisers"] = tuple((r["name"], dict(r["params"])) for r in d["regularisers"])
        d["evaluation"] = EvaluationSpec(d["evaluation"])
        if "resources" in d:
            d["resources"] = FrozenMap(d["resources"])
        return cls(**d)


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path | None
    datasets: tuple[tuple[str, str | None], ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    train: dict[str, Any]  # as written; each method's resolved settings: method_train()
    evaluation: EvaluationSpec
    plugins: tuple[str, ...] = ()
    leaderboard: LeaderboardSpec = field(default_factory=LeaderboardSpec)
    resources: FrozenMap = field(default_factory=FrozenMap)  # submitit parameters of every run
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    callbacks: tuple[tuple[str, dict[str, Any]], ...] = ()  # logging only: never in a run id
    external: tuple = ()  # of gmgbench.harness.dlib_format.entries.ExternalModel

    @property
    def selection_metric(self) -> str:
        return self.leaderboard.selection_metric

    @property
    def metrics(self) -> FrozenMap:
        """``{metric: settings}`` computed for every run."""
        return self.evaluation.metrics

    def runs(self) -> list[RunSpec]:
        return expand(self)

    def method_train(self, method: "MethodSpec") -> TrainSettings:
        """The training settings ``method``'s runs use: the study's, overridden by its own."""
        return TrainSettings(**{**self.train, **method.train})


# -- parsing -----------------------------------------------------------------------------------
def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """A list value is a grid axis; scalars are fixed. Sorted keys keep ids stable."""
    keys = sorted(params)
    # YAML gives lists; a frozen spec holds them as tuples: either is an axis.
    axes = [params[k] if isinstance(params[k], (list, tuple)) else [params[k]] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _param_type_error(cls: type, params: dict[str, Any]) -> tuple[str, str] | None:
    """(parameter, message) for a value whose type the Config's annotation rules out."""
    import typing

    try:
        hints = typing.get_type_hints(cls.Config)
    except Exception:  # noqa: BLE001 - an annotation we cannot resolve: the Config checks itself
        return None
    for key, value in params.items():
        hint = hints.get(key)
        if hint is float and not _is_number(value):
            return key, f"expected a number, got {value!r}{_text_hint(value)}"
        if hint is int and not _is_int(value):
            return key, f"expected an integer, got {value!r}"
        if hint is bool and not isinstance(value, bool):
            return key, f"expected true or false, got {value!r}"
        if hint is str and not isinstance(value, str):
            return key, f"expected a string, got {value!r}"
    return None


def _parse_term(where: str, key: str, name: Any, kind: str, params: Any,
                check_methods: bool) -> tuple[dict[str, Any], tuple[GridPoint, ...]]:
    """A method term's parameters, checked, and its grid with each point's Config built."""
    params = _mapping(where, f"{key}.params", params, f"{kind} parameters (a list value is a grid)")
    for p, value in params.items():
        if isinstance(value, list) and not value:
            raise _fail(where, f"{key}.params.{p}", "an empty grid: give at least one value")
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, float) and not math.isfinite(v):  # YAML reads .inf / .nan as floats
                raise _fail(where, f"{key}.params.{p}", f"{v!r} is not a finite number; training would stop "
                                                       "at its first step with a non-finite loss")
    if not check_methods:
        return params, ()
    from gmgbench.methods import registry  # late: methods import torch, which `gmgbench status` never needs

    try:
        cls = registry.get(name, kind)
    except KeyError as err:
        unknown = f"unknown {kind} {name!r}"
        msg = err.args[0].replace(unknown, unknown + did_you_mean(name, registry.names(kind)), 1)
        raise _fail(where, key if kind == "regulariser" else f"{key}.objective", msg) from None
    fields = [f.name for f in dataclasses.fields(cls.Config)]
    _check_keys(where, f"{key}.params.", params, fields)
    points = []
    for combo in _grid(params):
        bad = _param_type_error(cls, combo)
        if bad:
            raise _fail(where, f"{key}.params.{bad[0]}", bad[1])
        try:
            config = registry.make_config(cls, combo)
        except (KeyError, ValueError) as err:
            raise _fail(where, f"{key}.params", err.args[0]) from None
        weight = getattr(config, "weight", None)
        if kind == "regulariser" and _is_number(weight) and weight < 0:
            raise _fail(where, f"{key}.params.weight", f"a negative weight ({weight!r}) turns the penalty into a "
                                                        "reward; use ≥ 0")
        points.append(GridPoint(combo, config))
    return params, tuple(points)


def _entry(where: str, key: str, raw: Any, name_key: str, valid: Iterable[str], shape: str) -> dict[str, Any]:
    """A method or regulariser entry: ``NAME`` or a mapping with ``name_key`` and known keys."""
    if isinstance(raw, str):
        raw = {name_key: raw}
    if not isinstance(raw, dict) or not isinstance(raw.get(name_key), str):
        raise _fail(where, key, shape)
    _check_keys(where, f"{key}.", raw, valid)
    return raw


def _parse_method(where: str, i: int, m: Any, study_train: dict[str, Any], check_methods: bool) -> MethodSpec:
    key = f"methods[{i}]"
    m = _entry(where, key, m, "objective", _METHOD_KEYS, "a method is {objective: NAME, params: {...}, regularisers: [...]}")
    params, grid = _parse_term(where, key, m["objective"], "objective", m.get("params"), check_methods)
    regs = []
    for j, r in enumerate(_list(where, f"{key}.regularisers", m.get("regularisers"), "regularisers")):
        rkey = f"{key}.regularisers[{j}]"
        r = _entry(where, rkey, r, "name", _REG_KEYS, "a regulariser is NAME or {name: NAME, params: {...}}")
        rparams, rgrid = _parse_term(where, rkey, r["name"], "regulariser", r.get("params"), check_methods)
        regs.append(RegulariserSpec(r["name"], rparams, rgrid))
    label = m.get("label") or "+".join([m["objective"], *(r.name for r in regs)])
    if not isinstance(label, str):
        raise _fail(where, f"{key}.label", f"expected a string, got {label!r}")
    mtrain = TrainSettings.check(where, f"{key}.train.", m.get("train"))
    try:
        TrainSettings(**{**study_train, **mtrain})
    except (TypeError, ValueError) as err:
        raise _fail(where, f"{key}.train", str(err)) from None
    resources = _mapping(where, f"{key}.resources", m.get("resources"), "submitit parameters")
    reference = _mapping(where, f"{key}.reference", m.get("reference"), "{dataset: {values: {...}, source: ...}}")
    return MethodSpec(label, m["objective"], params, tuple(regs), mtrain, resources, reference, grid)


def _parse_datasets(where: str, raw: Any, base: Path) -> tuple[tuple[str, str | None], ...]:
    from gmgbench.harness import data  # late: keeps spec parsing free of dataset imports

    datasets = []
    for i, entry in enumerate(_list(where, "datasets", raw, "dataset names or {name, root}")):
        if isinstance(entry, dict):
            _check_keys(where, f"datasets[{i}].", entry, _DATASET_KEYS)
            dname, root = entry.get("name"), entry.get("root")
        else:
            dname, root = entry, None
        if dname not in data.names():
            raise _fail(where, f"datasets[{i}]", f"unknown dataset {dname!r}{did_you_mean(dname, data.names())}; "
                                                 f"valid datasets: {', '.join(data.names())}")
        if root is not None and not isinstance(root, str):
            raise _fail(where, f"datasets[{i}].root", f"expected a folder path, got {root!r}")
        datasets.append((dname, str((base / root).resolve()) if root else None))
    if not datasets:
        raise _fail(where, "datasets", "needs at least one dataset")
    return tuple(datasets)


def _parse_seeds(where: str, raw: Any) -> tuple[int, ...]:
    if _is_int(raw):
        return tuple(range(_int(where, "seeds", raw, 1)))
    if not isinstance(raw, list):
        raise _fail(where, "seeds", f"expected a number of seeds n (seeds 0..n-1) or a list of seeds, got {raw!r}")
    seeds = tuple(_int(where, f"seeds[{i}]", s, 0) for i, s in enumerate(raw))
    if not seeds:
        raise _fail(where, "seeds", "needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise _fail(where, "seeds", f"a seed is listed twice: {list(seeds)}")
    return seeds


def _parse_evaluation(where: str, raw: Any, check_methods: bool) -> EvaluationSpec:
    evaluation = _mapping(where, "evaluation", raw, "evaluation settings (metrics, seed)")
    if "batch_size" in evaluation:
        raise _fail(where, "evaluation.batch_size", "not a setting of its own: each metric has one "
                                                    "(evaluation.metrics.<metric>.batch_size)")
    _check_keys(where, "evaluation.", evaluation, _EVAL_KEYS)
    if "seed" in evaluation:
        _int(where, "evaluation.seed", evaluation["seed"], 0)
    metrics_cfg = _mapping(where, "evaluation.metrics", evaluation.get("metrics"), "metric name -> settings")
    if check_methods:
        check_metric_settings(where, "evaluation.metrics.", metrics_cfg)
    return EvaluationSpec(evaluation)


def check_metric_settings(where: str, prefix: str, metrics_cfg: Any) -> None:
    """``{metric: {setting: value}}`` against the metrics' own signatures (keys named
    ``prefix<metric>``): known names, known settings, and each value of its default's type
    (a count stays a positive integer)."""
    from gmgbench import metrics
    if not isinstance(metrics_cfg, dict):
        raise _fail(where, prefix.rstrip(".") or "metrics", "expected a mapping of metric name -> settings")
    valid = metrics.names()
    for mname, kwargs in metrics_cfg.items():
        if mname not in valid:
            raise _fail(where, f"{prefix}{mname}", f"unknown metric{did_you_mean(mname, valid)}; "
                                                   f"valid metrics: {', '.join(valid)}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise _fail(where, f"{prefix}{mname}", "metric settings are a mapping of keyword arguments")
        defaults = metrics.settings_of(mname)
        _check_keys(where, f"{prefix}{mname}.", kwargs or {}, defaults)
        for key, value in (kwargs or {}).items():
            default, at = defaults[key], f"{prefix}{mname}.{key}"
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise _fail(where, at, f"expected true or false, got {value!r}")
            elif _is_int(default) and default > 0:
                _int(where, at, value, 1)
            elif isinstance(default, float):
                _number(where, at, value)


def _check_selection(where: str, spec: StudySpec) -> None:
    """The leaderboard's selection column is one this study computes; without a
    ``leaderboard:`` block the default (dci.disentanglement) must be computed too."""
    from gmgbench import metrics
    if not spec.metrics:
        return  # a study that computes no metric makes no board
    selection, written = spec.selection_metric, spec.leaderboard.raw
    key = "leaderboard.selection" + (".metric" if isinstance(written.get("selection"), Mapping) else "")
    columns = [f"{m}.{k}" for m in spec.metrics for k in metrics.result_keys(m)]
    if selection in columns:
        return
    given = "" if "selection" in written else f" (the default; set {key})"
    raise _fail(where, key, f"{selection!r}{given} is not computed by this study{did_you_mean(selection, columns)}; "
                            f"its columns: {', '.join(columns)}")


def _typed_leaderboard(spec: StudySpec) -> StudySpec:
    """``spec`` carrying its leaderboard block's Options (selection protocol, claims,
    references; the keys belong to harness/leaderboard/options.py), checked against the
    study now rather than after training."""
    from gmgbench.harness.leaderboard.options import LeaderboardError, Options, references

    try:
        options = Options.from_spec(spec)
        refs = references(spec)
    except LeaderboardError as err:
        raise SpecError(str(err)) from None
    return dataclasses.replace(spec, leaderboard=LeaderboardSpec(spec.leaderboard.raw, options, FrozenMap(refs)))


def parse_spec(raw: dict[str, Any], path: Path | None = None, *, check_methods: bool = True) -> StudySpec:
    """Validate ``raw`` into a :class:`StudySpec`.

    ``check_methods=False`` skips loading plugins, building method Configs and checking
    metric settings, resources and the leaderboard (which imports torch, scikit-learn and
    submitit): run ids do not depend on them, so ``gmgbench status`` answers without that
    cost. Everything that trains or evaluates parses with the full checks.
    """
    where = str(path) if path else "<study spec>"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a study spec is a YAML mapping, got {type(raw).__name__}")
    _check_keys(where, "", raw, _TOP_KEYS)
    for key in ("name", "datasets", "methods"):
        if key not in raw:
            raise _fail(where, key, f"missing required key ({_TOP_KEYS[key]})")
    name = raw["name"]
    # A folder name (results/<name>, leaderboards/<name>/vN) that never reads as an option
    if not isinstance(name, str) or not re.fullmatch(r"[^\W_][\w-]*", name) or len(name) > _MAX_NAME:
        shown = name if not isinstance(name, str) or len(name) <= 40 else f"{name[:40]}... ({len(name)} characters)"
        raise _fail(where, "name", f"start with a letter or digit, then use letters, digits, '-' and '_' only, at "
                                   f"most {_MAX_NAME} characters; got {shown!r}")

    base = path.parent if path else Path.cwd()
    plugin_files = _list(where, "plugins", raw.get("plugins"), "method files")
    if not all(isinstance(p, str) for p in plugin_files):
        raise _fail(where, "plugins", f"expected a list of method file paths, got {plugin_files!r}")
    plugins = tuple(str((base / p).resolve()) for p in plugin_files)
    if check_methods:
        from gmgbench.harness import plugins as plugin_loader

        try:
            plugin_loader.load(plugins)
        except plugin_loader.PluginError as err:
            raise _fail(where, "plugins", str(err)) from None

    datasets = _parse_datasets(where, raw["datasets"], base)
    seeds = _parse_seeds(where, raw.get("seeds", 1))
    train = TrainSettings.check(where, "train.", raw.get("train"))
    try:
        TrainSettings(**train)
    except (TypeError, ValueError) as err:
        raise _fail(where, "train", str(err)) from None
    evaluation = _parse_evaluation(where, raw.get("evaluation"), check_methods)

    methods, labels = [], set()
    for i, m in enumerate(_list(where, "methods", raw["methods"], "methods")):
        method = _parse_method(where, i, m, train, check_methods)
        if method.label in labels:
            raise _fail(where, f"methods[{i}].label", f"two methods are labelled {method.label!r}; "
                                                      "give each a distinct 'label'")
        labels.add(method.label)
        methods.append(method)
    if not methods:
        raise _fail(where, "methods", "needs at least one method")
    leaderboard = _mapping(where, "leaderboard", raw.get("leaderboard"), "leaderboard settings")
    resources = _mapping(where, "resources", raw.get("resources"), "submitit parameters")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise _fail(where, "description", f"expected text, got {description!r}")

    from gmgbench.harness import callbacks as callbacks_mod

    try:
        callbacks = callbacks_mod.normalise(raw.get("callbacks"), f"{where}: callbacks")
    except callbacks_mod.CallbackError as err:
        raise SpecError(str(err)) from None
    for i, (cname, _) in enumerate(callbacks if check_methods else ()):
        try:
            callbacks_mod.resolve(cname)
        except callbacks_mod.CallbackError as err:
            raise _fail(where, f"callbacks[{i}]", str(err)) from None
        except (ValueError, TypeError) as err:  # importlib on ':attr' or '..x:y'
            raise _fail(where, f"callbacks[{i}]", f"{cname!r}: not module:attr with an importable module "
                                                  f"({err})") from None

    from gmgbench.harness.dlib_format.entries import parse_external

    external = parse_external(raw.get("external"), where, [d for d, _ in datasets], base, _fail)
    spec = StudySpec(
        name=name, path=path, datasets=datasets, methods=tuple(methods), seeds=seeds, train=train,
        evaluation=evaluation, plugins=plugins, leaderboard=LeaderboardSpec(leaderboard), resources=FrozenMap(resources),
        description=description, raw=copy.deepcopy(raw), callbacks=callbacks, external=external,
    )
    if check_methods:
        from gmgbench.harness.slurm.profile import ProfileError, check_resources

        try:
            check_resources(where, "resources", resources)
            for i, m in enumerate(spec.methods):
                check_resources(where, f"methods[{i}].resources", m.resources)
        except ProfileError as err:
            raise SpecError(str(err)) from None
        if leaderboard:  # the block's own errors first, then whether its column is computed
            spec = _typed_leaderboard(spec)
        _check_selection(where, spec)
    # Options are light (no metric, no registry): even `gmgbench status` gets them checked.
    return spec if spec.leaderboard.options is not None else _typed_leaderboard(spec)


def load_spec(path: str | Path, *, check_methods: bool = True, sets: Iterable[str] = (),
              only: Iterable[str] = ()) -> StudySpec:
    """Read and validate a spec; ``sets`` (``key=value``) and ``only`` (``dataset=a,b``) edit
    its YAML before validation, as a user editing the file would (see gmgbench.harness.overrides)."""
    from gmgbench.harness import overrides

    path = Path(path)
    raw = load_yaml(path, what="study spec", error=SpecError)
    sets, only = list(sets or []), list(only or [])
    try:
        raw = overrides.apply_sets(raw, sets)
    except overrides.OverrideError as err:
        raise SpecError(str(err)) from None
    try:
        if only:
            try:
                raw = overrides.apply_only(raw, only, parse_spec(raw, path, check_methods=False))
            except overrides.OverrideError as err:
                raise SpecError(str(err)) from None
        return parse_spec(raw, path, check_methods=check_methods)
    except SpecError as err:
        if not (sets or only) or str(err).startswith("--"):
            raise
        given = " ".join([*(f"--set {s}" for s in sets), *(f"--only {o}" for o in only)])
        raise SpecError(f"{err} (with {given})") from None


def expand(spec: StudySpec) -> list[RunSpec]:
    """Every run of the study, in a stable order: dataset, method, grid point, seed."""
    runs = []
    evaluation = spec.evaluation.for_runs()
    for dname, root in spec.datasets:
        for m in spec.methods:
            train = spec.method_train(m)
            reg_points = [r.points() for r in m.regularisers]
            for obj in m.points():
                for combo in itertools.product(*reg_points) if reg_points else [()]:
                    regs = tuple((r.name, thaw(p.params)) for r, p in zip(m.regularisers, combo))
                    configs = (obj.config, tuple(p.config for p in combo))
                    for seed in spec.seeds:
                        run = RunSpec(
                            study=spec.name, dataset=dname, dataset_root=root, method=m.label,
                            objective=m.objective, objective_params=thaw(obj.params), regularisers=regs,
                            seed=seed, train=train, evaluation=evaluation,
                            resources=FrozenMap({**spec.resources, **m.resources}),
                        )
                        if obj.config is not None and all(c is not None for c in configs[1]):
                            object.__setattr__(run, "_configs", configs)  # built once, at load
                        runs.append(run)
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(r for r in runs if ids.count(r.run_id) > 1)
        raise SpecError(f"{spec.path}: two entries expand to the same run {dup.name}; remove the duplicate")
    return runs


# -- the spec as data (a release's manifest) ------------------------------------------------
def spec_to_dict(spec: StudySpec) -> dict[str, Any]:
    """Everything of a study spec that decides its runs and its leaderboard (JSON-safe)."""
    return {
        "name": spec.name,
        "description": spec.description,
        "datasets": [{"name": d, "root": r} for d, r in spec.datasets],
        "methods": [{"label": m.label, "objective": m.objective, "params": thaw(m.params),
                     "regularisers": [{"name": r.name, "params": thaw(r.params)} for r in m.regularisers],
                     "train": thaw(m.train), "reference": thaw(m.reference)} for m in spec.methods],
        "seeds": list(spec.seeds),
        "train": spec.train,
        "evaluation": spec.evaluation.to_dict(),
        "leaderboard": spec.leaderboard.to_dict(),
    }


def spec_from_dict(d: Mapping[str, Any], *, error: type[UserError] = SpecError,
                   where: str = "manifest.json") -> StudySpec:
    """The inverse of :func:`spec_to_dict`; no registry lookups, so old releases rebuild
    even where a plugin method is not installed."""
    try:
        methods = tuple(MethodSpec(m["label"], m["objective"], m["params"],
                                   tuple(RegulariserSpec(r["name"], r["params"]) for r in m["regularisers"]),
                                   m["train"], FrozenMap(), m["reference"]) for m in d["methods"])
        return StudySpec(name=d["name"], path=None, datasets=tuple((x["name"], x["root"]) for x in d["datasets"]),
                         methods=methods, seeds=tuple(d["seeds"]), train=dict(d["train"]),
                         evaluation=EvaluationSpec(d["evaluation"]), leaderboard=LeaderboardSpec(d["leaderboard"]),
                         description=d.get("description", ""))
    except (KeyError, TypeError) as err:
        raise error(f"{where}: spec is malformed ({type(err).__name__}: {err})") from None


def spec_hash(spec: StudySpec) -> str:
    """SHA-256 of :func:`spec_to_dict` in canonical JSON."""
    blob = json.dumps(spec_to_dict(spec), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
