"""Study specs: a YAML file → validated :class:`StudySpec` → one :class:`RunSpec` per run.

A study is datasets × methods (each with hyperparameter grids) × seeds, under shared
training and evaluation settings. Every error names the file and the key that is wrong,
and every method parameter goes through the method's own ``Config`` before anything runs.
The run id is a hash of everything that determines a run's result, so a rerun of the same
spec finds the runs it already finished.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from harness.errors import UserError, check_keys
from harness.fileio import load_yaml

__all__ = ["SpecError", "check_metric_settings", "StudySpec", "MethodSpec", "RunSpec", "load_spec", "parse_spec", "expand", "TrainSettings"]


class SpecError(UserError, ValueError):
    """The study spec is invalid; the message names the file and the key."""


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


# Only these affect a run's numbers; the rest (logging, checkpoints, device choice,
# threads) do not enter the run id, so changing them never orphans finished runs.
_RESULT_KEYS = ("steps", "batch_size", "lr", "latent_dim")

_TOP_KEYS = {
    "name": "study name (used for results/<name>/ and leaderboards/<name>/)",
    "description": "free text",
    "datasets": "list of dataset names or {name, root}",
    "methods": "list of methods",
    "seeds": "list of ints, or an int n for seeds 0..n-1",
    "train": "training settings",
    "evaluation": "metrics and sizes",
    "plugins": "method files to load, relative to the spec",
    "leaderboard": "leaderboard settings",
    "resources": "default Slurm resources for every run",
    "callbacks": "run callbacks (experiment tracking): [tensorboard, {name: module:attr, params: {...}}]",
    "external": "models trained elsewhere, in disentanglement_lib's format: [{name, path, dataset}]",
}
_METHOD_KEYS = {"label", "objective", "params", "regularisers", "train", "resources", "reference"}
_REG_KEYS = {"name", "params"}
_EVAL_KEYS = {"metrics", "seed", "batch_size"}


@dataclass(frozen=True)
class RegulariserSpec:
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class MethodSpec:
    """One method entry: an objective and regularisers, each with a parameter grid."""

    label: str
    objective: str
    params: dict[str, Any]
    regularisers: tuple[RegulariserSpec, ...] = ()
    train: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    reference: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSpec:
    """Everything one training run needs. Frozen and picklable (submitit ships it)."""

    study: str
    dataset: str
    dataset_root: str | None
    method: str  # the method's label in the leaderboard
    objective: str
    objective_params: dict[str, Any]
    regularisers: tuple[tuple[str, dict[str, Any]], ...]
    seed: int
    train: TrainSettings
    evaluation: dict[str, Any]
    resources: dict[str, Any] = field(default_factory=dict, compare=False)

    def result_config(self) -> dict[str, Any]:
        """The part of the config that determines the result (hashed into the run id)."""
        return {
            "dataset": self.dataset,
            "objective": {"name": self.objective, "params": self.objective_params},
            "regularisers": [{"name": n, "params": p} for n, p in self.regularisers],
            "seed": self.seed,
            "train": {k: getattr(self.train, k) for k in _RESULT_KEYS},
            "evaluation": self.evaluation,
        }

    @property
    def run_id(self) -> str:
        blob = json.dumps(self.result_config(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

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
        d = dataclasses.asdict(self)
        d["regularisers"] = [{"name": n, "params": p} for n, p in self.regularisers]
        d["run_id"] = self.run_id
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        d = dict(d)
        d.pop("run_id", None)
        d["train"] = TrainSettings(**d["train"])
        d["regularisers"] = tuple((r["name"], dict(r["params"])) for r in d["regularisers"])
        return cls(**d)


@dataclass(frozen=True)
class StudySpec:
    name: str
    path: Path | None
    datasets: tuple[tuple[str, str | None], ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...]
    train: dict[str, Any]
    evaluation: dict[str, Any]
    plugins: tuple[str, ...] = ()
    leaderboard: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    callbacks: tuple[tuple[str, dict[str, Any]], ...] = ()  # logging only: never in a run id
    external: tuple = ()  # of harness.dlib_format.entries.ExternalModel

    @property
    def selection_metric(self) -> str:
        sel = self.leaderboard.get("selection", "dci.disentanglement")
        return sel["metric"] if isinstance(sel, dict) else sel

    def runs(self) -> list[RunSpec]:
        return expand(self)

    def method_train(self, method: "MethodSpec") -> TrainSettings:
        """The training settings ``method``'s runs use: the study's, overridden by its own."""
        return TrainSettings(**{**self.train, **method.train})


# ---------------------------------------------------------------------------------------
def _fail(where: str, key: str, msg: str) -> SpecError:
    return SpecError(f"{where}: {key}: {msg}")


def _check_keys(where: str, prefix: str, got: dict, valid: Iterable[str]) -> None:
    check_keys(f"{where}: {prefix}", got, valid, error=SpecError)


def _grid(params: dict[str, Any]) -> list[dict[str, Any]]:
    """A list value is a grid axis; scalars are fixed. Sorted keys keep ids stable."""
    keys = sorted(params)
    axes = [params[k] if isinstance(params[k], list) else [params[k]] for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _validate_params(where: str, key: str, name: str, kind: str, params: dict[str, Any]) -> None:
    from methods import registry  # late: methods import torch, which `gmgbench status` never needs

    try:
        cls = registry.get(name, kind)
    except KeyError as err:
        raise _fail(where, key, err.args[0]) from None
    for combo in _grid(params):
        try:
            registry.make_config(cls, combo)
        except (KeyError, ValueError) as err:
            raise _fail(where, f"{key}.params", err.args[0]) from None


def parse_spec(raw: dict[str, Any], path: Path | None = None, *, check_methods: bool = True) -> StudySpec:
    """Validate ``raw`` into a :class:`StudySpec`.

    ``check_methods=False`` skips loading plugins and checking method parameters and metric
    settings against their classes (which imports torch and scikit-learn): run ids do not
    depend on them, so ``gmgbench status`` answers without that cost. Everything that
    trains or evaluates parses with the full checks.
    """
    where = str(path) if path else "<study spec>"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a study spec is a YAML mapping, got {type(raw).__name__}")
    _check_keys(where, "", raw, _TOP_KEYS)
    for key in ("name", "datasets", "methods"):
        if key not in raw:
            raise _fail(where, key, f"missing required key ({_TOP_KEYS[key]})")
    name = str(raw["name"])
    if not name.replace("-", "_").isidentifier():
        raise _fail(where, "name", f"use letters, digits, '-' and '_' only, got {name!r}")

    base = path.parent if path else Path.cwd()
    plugins = tuple(str((base / p).resolve()) for p in raw.get("plugins", []) or [])
    if check_methods:
        from methods import registry

        for p in plugins:
            try:
                registry.load_plugin_file(p)
            except registry.PluginError as err:
                raise _fail(where, "plugins", str(err)) from None
        registry.load_entry_points()

    from harness import data  # late: keeps spec parsing free of dataset imports

    datasets = []
    for i, entry in enumerate(raw["datasets"] or []):
        dname, root = (entry, None) if isinstance(entry, str) else (entry.get("name"), entry.get("root"))
        if dname not in data.names():
            raise _fail(where, f"datasets[{i}]", f"unknown dataset {dname!r}; valid datasets: {', '.join(data.names())}")
        datasets.append((dname, str((base / root).resolve()) if root else None))
    if not datasets:
        raise _fail(where, "datasets", "needs at least one dataset")

    seeds_raw = raw.get("seeds", 1)
    seeds = tuple(range(seeds_raw)) if isinstance(seeds_raw, int) else tuple(int(s) for s in seeds_raw)
    if not seeds:
        raise _fail(where, "seeds", "needs at least one seed")

    train = dict(raw.get("train") or {})
    _check_keys(where, "train.", train, [f.name for f in dataclasses.fields(TrainSettings)])
    try:
        TrainSettings(**train)
    except (TypeError, ValueError) as err:
        raise _fail(where, "train", str(err)) from None

    evaluation = dict(raw.get("evaluation") or {})
    _check_keys(where, "evaluation.", evaluation, _EVAL_KEYS)
    if check_methods:
        check_metric_settings(where, "evaluation.metrics.", evaluation.get("metrics") or {})

    methods, labels = [], set()
    for i, m in enumerate(raw["methods"] or []):
        key = f"methods[{i}]"
        if isinstance(m, str):
            m = {"objective": m}
        if not isinstance(m, dict) or "objective" not in m:
            raise _fail(where, key, "a method is {objective: NAME, params: {...}, regularisers: [...]}")
        _check_keys(where, f"{key}.", m, _METHOD_KEYS)
        if check_methods:
            _validate_params(where, f"{key}.objective", m["objective"], "objective", m.get("params") or {})
        regs = []
        for j, r in enumerate(m.get("regularisers") or []):
            rkey = f"{key}.regularisers[{j}]"
            if isinstance(r, str):
                r = {"name": r}
            _check_keys(where, f"{rkey}.", r, _REG_KEYS)
            if check_methods:
                _validate_params(where, rkey, r.get("name"), "regulariser", r.get("params") or {})
            regs.append(RegulariserSpec(r["name"], dict(r.get("params") or {})))
        label = m.get("label") or "+".join([m["objective"], *(r.name for r in regs)])
        if label in labels:
            raise _fail(where, f"{key}.label", f"two methods are labelled {label!r}; give each a distinct 'label'")
        labels.add(label)
        mtrain = dict(m.get("train") or {})
        _check_keys(where, f"{key}.train.", mtrain, [f.name for f in dataclasses.fields(TrainSettings)])
        methods.append(MethodSpec(label, m["objective"], dict(m.get("params") or {}), tuple(regs), mtrain,
                                  dict(m.get("resources") or {}), dict(m.get("reference") or {})))
    if not methods:
        raise _fail(where, "methods", "needs at least one method")
    if not isinstance(raw.get("leaderboard") or {}, dict):
        raise _fail(where, "leaderboard", f"expected a mapping of leaderboard settings, got {raw['leaderboard']!r}")

    from harness import callbacks as callbacks_mod

    callbacks = callbacks_mod.normalise(raw.get("callbacks"), f"{where}: callbacks")
    for i, (cname, _) in enumerate(callbacks if check_methods else ()):
        try:
            callbacks_mod.resolve(cname)
        except callbacks_mod.CallbackError as err:
            raise _fail(where, f"callbacks[{i}]", str(err)) from None

    from harness.dlib_format.entries import parse_external

    external = parse_external(raw.get("external"), where, [d for d, _ in datasets], base, _fail)
    spec = StudySpec(
        name=name, path=path, datasets=tuple(datasets), methods=tuple(methods), seeds=seeds, train=train,
        evaluation=evaluation, plugins=plugins, leaderboard=dict(raw.get("leaderboard") or {}),
        resources=dict(raw.get("resources") or {}), description=str(raw.get("description", "")), raw=copy.deepcopy(raw),
        callbacks=callbacks, external=external,
    )
    _validate_leaderboard(spec)
    return spec


def _validate_leaderboard(spec: StudySpec) -> None:
    """The leaderboard block (selection protocol, claims, references) is checked now, not
    after training; its keys belong to harness/leaderboard/options.py. A spec without the
    block keeps the default selection, checked when a board is built."""
    from harness.leaderboard.options import LeaderboardError, Options

    if not spec.leaderboard:
        return
    try:
        Options.from_spec(spec)
    except LeaderboardError as err:
        raise SpecError(str(err)) from None


def check_metric_settings(where: str, prefix: str, metrics_cfg: Any) -> None:
    """``{metric: {setting: value}}`` against the metrics' own signatures (keys named ``prefix<metric>``)."""
    import metrics

    if not isinstance(metrics_cfg, dict):
        raise _fail(where, prefix.rstrip(".") or "metrics", "expected a mapping of metric name -> settings")
    valid = metrics.names()
    for mname, kwargs in metrics_cfg.items():
        if mname not in valid:
            raise _fail(where, f"{prefix}{mname}", f"unknown metric; valid metrics: {', '.join(valid)}")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise _fail(where, f"{prefix}{mname}", "metric settings are a mapping of keyword arguments")
        _check_keys(where, f"{prefix}{mname}.", kwargs or {}, metrics.settings_of(mname))


def load_spec(path: str | Path, *, check_methods: bool = True, sets: Iterable[str] = (),
              only: Iterable[str] = ()) -> StudySpec:
    """Read and validate a spec; ``sets`` (``key=value``) and ``only`` (``dataset=a,b``) edit
    its YAML before validation, as a user editing the file would (see harness.overrides)."""
    from harness import overrides

    path = Path(path)
    raw = load_yaml(path, what="study spec", error=SpecError)
    sets, only = list(sets or []), list(only or [])
    raw = overrides.apply_sets(raw, sets)
    try:
        if only:
            raw = overrides.apply_only(raw, only, parse_spec(raw, path, check_methods=False))
        return parse_spec(raw, path, check_methods=check_methods)
    except SpecError as err:
        if not (sets or only) or str(err).startswith("--"):
            raise
        given = " ".join([*(f"--set {s}" for s in sets), *(f"--only {o}" for o in only)])
        raise SpecError(f"{err} (with {given})") from None


def expand(spec: StudySpec) -> list[RunSpec]:
    """Every run of the study, in a stable order: dataset, method, grid point, seed."""
    runs = []
    evaluation = {"metrics": spec.evaluation.get("metrics") or {}, "seed": spec.evaluation.get("seed", 0)}
    for dname, root in spec.datasets:
        for m in spec.methods:
            train = spec.method_train(m)
            obj_grid = _grid(m.params)
            reg_grids = [_grid(r.params) for r in m.regularisers]
            for obj_params in obj_grid:
                for reg_combo in itertools.product(*reg_grids) if reg_grids else [()]:
                    regs = tuple((r.name, dict(p)) for r, p in zip(m.regularisers, reg_combo))
                    for seed in spec.seeds:
                        runs.append(RunSpec(
                            study=spec.name, dataset=dname, dataset_root=root, method=m.label,
                            objective=m.objective, objective_params=dict(obj_params), regularisers=regs,
                            seed=seed, train=train, evaluation=evaluation,
                            resources={**spec.resources, **m.resources},
                        ))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        dup = next(r for r in runs if ids.count(r.run_id) > 1)
        raise SpecError(f"{spec.path}: two entries expand to the same run {dup.name}; remove the duplicate")
    return runs
