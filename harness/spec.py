"""Study specs: a YAML file → validated :class:`StudySpec` → one :class:`RunSpec` per run.

A study is datasets × methods (each with hyperparameter grids) × seeds, under shared
training and evaluation settings. The spec is checked once, when it loads, and completely:
exact types (:mod:`~gmgbench.harness.spec_values`: an int where an int is meant; a bool is
no int, ``"3"`` is no number), no empty grid, every method parameter through the method's
own ``Config`` (:mod:`~gmgbench.harness.spec_methods`: built there, once, and carried to
training), every metric setting against the metric. Every error is one :class:`SpecError`
line naming the file and the key; nothing trains first.

This module knows the study's own shape. The sections that belong to other parts of the
harness are checked by their owners, through :data:`SECTIONS`: the leaderboard block
(:mod:`gmgbench.harness.leaderboard.options`), the Slurm resources
(:mod:`gmgbench.harness.slurm.profile`), the callbacks (:mod:`gmgbench.harness.callbacks`),
the external models (:mod:`gmgbench.harness.dlib_format.entries`). Each owner declares a
:class:`SectionCheck`; :mod:`gmgbench.harness.spec_sections` registers them when
``gmgbench.harness`` is imported, so this module imports none of them.

The tree (frozen dataclasses): :class:`StudySpec` → :class:`MethodSpec` (its resolved
:class:`TrainSettings`, the objective's and each :class:`RegulariserSpec`'s grid of
:class:`GridPoint`, each with its built ``Config``) → :func:`expand` → :class:`RunSpec`
(:mod:`~gmgbench.harness.run_spec`). The sections that are hashed or published keep the
values as written (``train``, ``evaluation``, ``leaderboard``, ``resources``, ``params``),
so the run id is a hash of everything that determines a run's result as the user wrote it,
and a rerun of the same spec finds the runs it already finished (:mod:`gmgbench.harness.sections`:
each section gives its block back as written, ``to_dict()``, for the hashes).
:func:`spec_to_dict` / :func:`spec_from_dict` / :func:`spec_hash` are the spec as data (a
release's manifest).
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Protocol

from gmgbench.harness import overrides
from gmgbench.harness.errors import UserError, did_you_mean
from gmgbench.harness.fileio import load_yaml
from gmgbench.harness.run_spec import RunSpec, TrainSettings
from gmgbench.harness.sections import EvaluationSpec, FrozenMap, LeaderboardSpec, thaw
from gmgbench.harness.spec_methods import GridPoint, MethodSpec, RegulariserSpec, parse_method
from gmgbench.harness.spec_values import (SpecError, as_int, as_list, as_mapping, check_metric_settings,
                                          check_spec_keys, fail, is_int)

__all__ = ["SpecError", "check_metric_settings", "StudySpec", "MethodSpec", "RegulariserSpec", "GridPoint", "RunSpec",
           "TrainSettings", "EvaluationSpec", "LeaderboardSpec", "FrozenMap", "SectionCheck", "Sections", "SECTIONS",
           "load_spec", "parse_spec", "expand", "spec_to_dict", "spec_from_dict", "spec_hash"]

_MAX_NAME = 100  # the study's folders and release files stay far below a file system's 255

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
_EVAL_KEYS = {"metrics", "seed"}
_DATASET_KEYS = {"name", "root"}


# -- sections checked by their owners --------------------------------------------------------
class SectionCheck(Protocol):
    """An owner's check of one top-level section of a study spec.

    Called with the file (``where``), the section as written (``raw``, None when absent),
    the study parsed so far (its own shape checked, the sections checked before this one
    in place) and ``full`` (False for a spec read without its methods, see
    :func:`parse_spec`: then only the checks that import nothing heavy run). Returns the
    section's typed value, which replaces the :class:`StudySpec` field of the section's
    name, or None to keep that field as parsed. Raises a :class:`UserError` whose message
    names the file and the key; the spec reports it word for word, as a :class:`SpecError`.
    """

    def __call__(self, where: str, raw: Any, spec: "StudySpec", full: bool) -> Any: ...


class Sections:
    """The owners' checks, one per top-level key, run in the order they were registered."""

    def __init__(self) -> None:
        self._checks: dict[str, SectionCheck] = {}

    def register(self, key: str, check: SectionCheck) -> None:
        if key not in _TOP_KEYS:
            raise ValueError(f"{key!r} is not a top-level key of a study spec")
        if self._checks.get(key, check) is not check:
            raise ValueError(f"the study spec's {key!r} section has an owner already: {self._checks[key]!r}")
        self._checks[key] = check

    def __iter__(self) -> Iterator[tuple[str, SectionCheck]]:
        return iter(list(self._checks.items()))

    def __len__(self) -> int:
        return len(self._checks)


SECTIONS = Sections()  # filled by gmgbench.harness.spec_sections when gmgbench.harness is imported


def _check_sections(where: str, raw: dict[str, Any], spec: "StudySpec", sections: Sections,
                    full: bool) -> "StudySpec":
    for key, check in sections:
        try:
            value = check(where, raw.get(key), spec, full)
        except UserError as err:
            raise (err if isinstance(err, SpecError) else SpecError(str(err))) from None
        if value is not None:
            spec = dataclasses.replace(spec, **{key: value})
    return spec


# -- the study ----------------------------------------------------------------------------------
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

    def method_train(self, method: MethodSpec) -> TrainSettings:
        """The training settings ``method``'s runs use: the study's, overridden by its own
        (resolved once, when the spec loaded; here for a spec read back from data)."""
        return method.settings or TrainSettings(**{**self.train, **method.train})


# -- parsing -----------------------------------------------------------------------------------
def _load_plugins(where: str, plugins: tuple[str, ...]) -> None:
    """The spec's method and metric files, then installed packages' entry points."""
    from gmgbench.harness import plugins as plugin_loader  # late: methods import torch, which `gmgbench status` never needs

    try:
        plugin_loader.load(plugins)
    except plugin_loader.PluginError as err:
        raise fail(where, "plugins", str(err)) from None


def _parse_datasets(where: str, raw: Any, base: Path) -> tuple[tuple[str, str | None], ...]:
    from gmgbench.harness import data  # late: keeps spec parsing free of dataset imports

    datasets = []
    for i, entry in enumerate(as_list(where, "datasets", raw, "dataset names or {name, root}")):
        if isinstance(entry, dict):
            check_spec_keys(where, f"datasets[{i}].", entry, _DATASET_KEYS)
            dname, root = entry.get("name"), entry.get("root")
        else:
            dname, root = entry, None
        if dname not in data.names():
            raise fail(where, f"datasets[{i}]", f"unknown dataset {dname!r}{did_you_mean(dname, data.names())}; "
                                                 f"valid datasets: {', '.join(data.names())}")
        if root is not None and not isinstance(root, str):
            raise fail(where, f"datasets[{i}].root", f"expected a folder path, got {root!r}")
        datasets.append((dname, str((base / root).resolve()) if root else None))
    if not datasets:
        raise fail(where, "datasets", "needs at least one dataset")
    return tuple(datasets)


def _parse_seeds(where: str, raw: Any) -> tuple[int, ...]:
    if is_int(raw):
        return tuple(range(as_int(where, "seeds", raw, 1)))
    if not isinstance(raw, list):
        raise fail(where, "seeds", f"expected a number of seeds n (seeds 0..n-1) or a list of seeds, got {raw!r}")
    seeds = tuple(as_int(where, f"seeds[{i}]", s, 0) for i, s in enumerate(raw))
    if not seeds:
        raise fail(where, "seeds", "needs at least one seed")
    if len(set(seeds)) != len(seeds):
        raise fail(where, "seeds", f"a seed is listed twice: {list(seeds)}")
    return seeds


def _parse_evaluation(where: str, raw: Any, check_methods: bool) -> EvaluationSpec:
    evaluation = as_mapping(where, "evaluation", raw, "evaluation settings (metrics, seed)")
    if "batch_size" in evaluation:
        raise fail(where, "evaluation.batch_size", "not a setting of its own: each metric has one "
                                                    "(evaluation.metrics.<metric>.batch_size)")
    check_spec_keys(where, "evaluation.", evaluation, _EVAL_KEYS)
    if "seed" in evaluation:
        as_int(where, "evaluation.seed", evaluation["seed"], 0)
    metrics_cfg = as_mapping(where, "evaluation.metrics", evaluation.get("metrics"), "metric name -> settings")
    if check_methods:
        check_metric_settings(where, "evaluation.metrics.", metrics_cfg)
    return EvaluationSpec(evaluation)



def parse_spec(raw: dict[str, Any], path: Path | None = None, *, check_methods: bool = True,
               sections: Sections | None = None) -> StudySpec:
    """Validate ``raw`` into a :class:`StudySpec`; ``sections`` (default :data:`SECTIONS`)
    check the sections other modules own.

    ``check_methods=False`` skips loading plugins, building method Configs and checking
    metric settings, resources, callbacks' imports and the leaderboard's columns (which
    import torch, scikit-learn and submitit): run ids do not depend on them, so ``gmgbench
    status`` answers without that cost. Everything that trains or evaluates parses with the
    full checks.
    """
    where = str(path) if path else "<study spec>"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a study spec is a YAML mapping, got {type(raw).__name__}")
    check_spec_keys(where, "", raw, _TOP_KEYS)
    for key in ("name", "datasets", "methods"):
        if key not in raw:
            raise fail(where, key, f"missing required key ({_TOP_KEYS[key]})")
    name = raw["name"]
    # A folder name (results/<name>, leaderboards/<name>/vN) that never reads as an option
    if not isinstance(name, str) or not re.fullmatch(r"[^\W_][\w-]*", name) or len(name) > _MAX_NAME:
        shown = name if not isinstance(name, str) or len(name) <= 40 else f"{name[:40]}... ({len(name)} characters)"
        raise fail(where, "name", f"start with a letter or digit, then use letters, digits, '-' and '_' only, at "
                                  f"most {_MAX_NAME} characters; got {shown!r}")

    base = path.parent if path else Path.cwd()
    plugin_files = as_list(where, "plugins", raw.get("plugins"), "method files")
    if not all(isinstance(p, str) for p in plugin_files):
        raise fail(where, "plugins", f"expected a list of method file paths, got {plugin_files!r}")
    plugins = tuple(str((base / p).resolve()) for p in plugin_files)
    if check_methods:
        _load_plugins(where, plugins)

    datasets = _parse_datasets(where, raw["datasets"], base)
    seeds = _parse_seeds(where, raw.get("seeds", 1))
    train = TrainSettings.check(where, "train.", raw.get("train"))
    try:
        TrainSettings(**train)
    except (TypeError, ValueError) as err:
        raise fail(where, "train", str(err)) from None
    evaluation = _parse_evaluation(where, raw.get("evaluation"), check_methods)

    methods, labels = [], set()
    for i, m in enumerate(as_list(where, "methods", raw["methods"], "methods")):
        method = parse_method(where, i, m, train, check_methods)
        if method.label in labels:
            raise fail(where, f"methods[{i}].label", f"two methods are labelled {method.label!r}; "
                                                     "give each a distinct 'label'")
        labels.add(method.label)
        methods.append(method)
    if not methods:
        raise fail(where, "methods", "needs at least one method")
    leaderboard = as_mapping(where, "leaderboard", raw.get("leaderboard"), "leaderboard settings")
    resources = as_mapping(where, "resources", raw.get("resources"), "submitit parameters")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise fail(where, "description", f"expected text, got {description!r}")
    spec = StudySpec(
        name=name, path=path, datasets=datasets, methods=tuple(methods), seeds=seeds, train=train,
        evaluation=evaluation, plugins=plugins, leaderboard=LeaderboardSpec(leaderboard), resources=FrozenMap(resources),
        description=description, raw=copy.deepcopy(raw),
    )
    return _check_sections(where, raw, spec, SECTIONS if sections is None else sections, check_methods)


def load_spec(path: str | Path, *, check_methods: bool = True, sets: Iterable[str] = (),
              only: Iterable[str] = (), sections: Sections | None = None) -> StudySpec:
    """Read and validate a spec; ``sets`` (``key=value``) and ``only`` (``dataset=a,b``) edit
    its YAML before validation, as a user editing the file would (see gmgbench.harness.overrides)."""
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
                raw = overrides.apply_only(raw, only, parse_spec(raw, path, check_methods=False, sections=sections))
            except overrides.OverrideError as err:
                raise SpecError(str(err)) from None
        return parse_spec(raw, path, check_methods=check_methods, sections=sections)
    except SpecError as err:
        if not (sets or only) or str(err).startswith("--"):
            raise
        given = " ".join([*(f"--set {s}" for s in sets), *(f"--only {o}" for o in only)])
        raise SpecError(f"{err} (with {given})") from None


# -- runs -------------------------------------------------------------------------------------
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
