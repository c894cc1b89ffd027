"""A study spec's ``external:`` entries: models trained elsewhere, in dlib's format.

    external:
      - {name: dlib-betavae-0, path: zoo/0, dataset: dsprites_full}

``path`` is a dlib model folder (relative to the spec); ``dataset`` must be one of the
study's datasets (default: the one the model's train.gin names, read when it is imported).
``gmgbench run`` evaluates each entry that has no result yet, with the study's metrics;
leaderboards show it as ``<name> (external)``. Parsing needs no TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gmgbench.harness.sections import EvaluationSpec
from gmgbench.harness.spec_values import fail

__all__ = ["ExternalModel", "parse_external", "check_section", "KEYS"]

KEYS = {"name": "label on the leaderboard (unique)", "path": "dlib model folder, relative to the spec",
        "dataset": "one of the study's datasets"}


@dataclass(frozen=True)
class ExternalModel:
    name: str
    path: str
    dataset: str

    @property
    def label(self) -> str:
        return f"{self.name} (external)"


def check_section(where: str, raw: Any, spec, full: bool) -> tuple[ExternalModel, ...]:
    """The study spec's ``external:`` entries as it loads (a :class:`gmgbench.harness.spec.SectionCheck`);
    a ``path`` is relative to the spec's folder."""
    return parse_external(raw, where, [d for d, _ in spec.datasets], spec.path.parent if spec.path else Path.cwd())


def parse_external(raw: Any, where: str, datasets: list[str], base: Path) -> tuple[ExternalModel, ...]:
    """Validate ``raw`` (the spec's ``external`` value): a :class:`~gmgbench.harness.spec_values.SpecError`
    names the file and the key."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise fail(where, "external", "a list of {name, path, dataset}")
    out, names = [], set()
    for i, entry in enumerate(raw):
        key = f"external[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, key, "an external model is {name: ..., path: ..., dataset: ...}")
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise fail(where, f"{key}.{unknown[0]}", f"unknown key; valid keys: {', '.join(sorted(KEYS))}")
        missing = [k for k in KEYS if not entry.get(k)]
        if missing:
            raise fail(where, f"{key}.{missing[0]}", f"missing ({KEYS[missing[0]]})")
        name, dataset = str(entry["name"]), str(entry["dataset"])
        if name in names:
            raise fail(where, f"{key}.name", f"two external models are named {name!r}")
        if dataset not in datasets:
            raise fail(where, f"{key}.dataset", f"{dataset!r} is not a dataset of this study ({', '.join(datasets)})")
        names.add(name)
        out.append(ExternalModel(name, str((base / str(entry["path"])).resolve()), dataset))
    return tuple(out)


def study_evaluation(evaluation: EvaluationSpec | Mapping[str, Any] | None) -> dict[str, Any]:
    """A study's evaluation block (or one an external result recorded) as external results
    record it: ``{metrics, seed}``."""
    if not isinstance(evaluation, EvaluationSpec):
        evaluation = EvaluationSpec(evaluation or {})
    return {"metrics": evaluation.settings(), "seed": int(evaluation.seed)}


def external_id(name: str, dataset: str, evaluation: EvaluationSpec | Mapping[str, Any]) -> str:
    """Stable id of an external result: its name, dataset and evaluation settings."""
    import hashlib
    import json

    blob = json.dumps({"name": name, "dataset": dataset, "evaluation": study_evaluation(evaluation)},
                      sort_keys=True, default=str)
    return "ext-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def exported_run(result: dict) -> str:
    """The gmgbench run an imported model was exported from (``export-dlib`` binds
    ``gmgbench.run_id`` in its gin, which every import records), else ``""``."""
    ext = result.get("external") or {}
    gin = ext.get("gin") if isinstance(ext.get("gin"), dict) else {}
    return str((ext.get("gmgbench_export") or {}).get("run_id") or gin.get("gmgbench.run_id", "")).strip("'\"")


def external_rows(spec, store):
    """``(row, result | None, path)`` per external model on the study's leaderboard.

    That is each ``external:`` entry of the spec (``missing`` until imported) and every
    model imported into the store (``gmgbench import-dlib``) on one of the study's datasets
    with the study's evaluation settings, so that its numbers are comparable.
    """
    from gmgbench.harness.fileio import load_json
    from gmgbench.harness.results import StoreError

    evaluation = study_evaluation(spec.evaluation)
    datasets = {d for d, _ in spec.datasets}
    folder = store.external_dir()
    wanted = {external_id(e.name, e.dataset, evaluation): e for e in spec.external}
    found = {}
    for path in sorted(folder.glob("ext-*.json")) if folder.is_dir() else []:
        result = load_json(path, what="imported model's scores", error=StoreError,
                           hint="move the file away and import the model again")
        config = result.get("config") or {}
        if path.stem in wanted or (config.get("dataset") in datasets and
                                   study_evaluation(config.get("evaluation")) == evaluation):
            found[path.stem] = (result, path)
    ids = list(wanted) + sorted(i for i in found if i not in wanted)
    own_runs = {r.run_id for r in spec.runs()} if found else set()
    for ext_id in ids:
        result, path = found.get(ext_id, (None, store.external_path(ext_id)))
        label = "external"
        if result is not None:
            name, dataset = result["external"]["name"], result["config"]["dataset"]
            setting = f"tfhub sha256:{result['external']['module_sha256'][:12]}"
            source = exported_run(result)
            if source in own_runs:
                raise StoreError(f"{path}: {name!r} is run {source} of this study exported with export-dlib and "
                                 "imported back; it would be ranked against its own source: move the file out of "
                                 f"{folder}")
            if source:
                label = f"re-imported gmgbench run {source}"
        else:
            name, dataset, setting = wanted[ext_id].name, wanted[ext_id].dataset, "not imported"
        row = {"run_id": ext_id, "dataset": dataset, "method": f"{name} ({label})", "setting": setting, "seed": 0,
               "status": "missing" if result is None else result.get("status", "done")}
        yield row, result, path
