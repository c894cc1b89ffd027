"""disentanglement_lib-compatible export of per-run metrics.

dlib stores one flat, namespaced dict per (model, representation, metric) in
``<model>/metrics/<representation>/<metric>/results/aggregate/evaluation.json`` and its
``aggregate_results_to_json`` glob-reads them into one pandas frame (one row per file,
plus a ``path`` column), written with ``DataFrame.to_json()``. We write the same files,
with gin-literal strings for config values (``"'beta_vae'"``), and the aggregated frame
as ``results.json`` that ``load_aggregated_json_results`` (``pd.read_json``) reads.
"""
from __future__ import annotations

import json
import math
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from gmgbench.harness.leaderboard.aggregate import metric_columns
from gmgbench.metrics import table as metric_table

__all__ = ["evaluation_dicts", "export_dlib", "dlib_names"]


def dlib_names(metric: str) -> tuple[str, str]:
    """``(evaluation.name, metric folder)`` of one of our metrics: dlib's name from the metric's
    declaration (metrics/table.py; our own where dlib has none or the metric is not
    registered here). Two metrics with one dlib name (dci and dci_fast) keep apart: the one
    not named so writes its own folder."""
    try:
        name = metric_table.declaration(metric).dlib_name or metric
    except KeyError:
        return metric, metric
    shared = name != metric and any(m.name != metric and name in (m.name, m.dlib_name)
                                    for m in metric_table.declarations())
    return name, metric if shared else name


# dlib's uuid is random per evaluation; ours is derived from the run and metric so that an
# export is reproducible.
_NAMESPACE = uuid.UUID("6c1f8a52-3b8e-4d55-9d0e-3f0f2b7c9a11")


def _gin(value: Any) -> str:
    """A value as gin's operative config prints it: strings quoted, numbers bare."""
    return repr(value) if isinstance(value, str) else str(value)


def evaluation_dicts(runs: pd.DataFrame, spec=None) -> list[tuple[str, str, dict[str, Any]]]:
    """``(run_id, dlib metric name, flat dict)`` for every finished run and metric.

    The flat dict has dlib's keys (``train_config.model.name``, ``train_config.model.random_seed``,
    ``train_config.dataset.name``, ``evaluation_config.evaluation.name``,
    ``evaluation_results.<key>``, ``evaluation_results.elapsed_time``,
    ``evaluation_results.uuid``) plus ``train_config.gmgbench.*`` keys naming our run.
    """
    by_id = {r.run_id: r for r in spec.runs()} if spec is not None else {}
    out = []
    cols = metric_columns(runs)
    for _, row in runs[runs["status"] == "done"].iterrows():
        groups: dict[str, list[str]] = {}
        for c in cols:
            if math.isfinite(row[c]):
                groups.setdefault(c.split(".", 1)[0], []).append(c)
        for metric, mcols in groups.items():
            name, folder = dlib_names(metric)
            d: dict[str, Any] = {
                "train_config.model.name": _gin(row["method"]),
                "train_config.model.random_seed": _gin(int(row["seed"])),
                "train_config.dataset.name": _gin(row["dataset"]),
                "train_config.gmgbench.run_id": _gin(row["run_id"]),
                "train_config.gmgbench.setting": _gin(row["setting"]),
                "evaluation_config.evaluation.name": _gin(name),
                "evaluation_config.gmgbench.metric": _gin(metric),
            }
            run = by_id.get(row["run_id"])
            if run is not None:
                for k, v in sorted(run.hyperparams.items()):
                    d[f"train_config.{k}"] = _gin(v)
                d["evaluation_config.evaluation.random_seed"] = _gin(run.evaluation.seed)
            for c in mcols:
                d[f"evaluation_results.{c.split('.', 1)[1]}"] = float(row[c])
            # Our results time the whole evaluation, not each metric.
            elapsed = row["eval_seconds"]
            d["evaluation_results.elapsed_time"] = float(elapsed) if math.isfinite(elapsed) else 0.0
            d["evaluation_results.uuid"] = str(uuid.uuid5(_NAMESPACE, f"{row['run_id']}/{metric}"))
            out.append((row["run_id"], folder, d))
    return out


def export_dlib(runs: pd.DataFrame, out_dir: str | Path, spec=None) -> list[Path]:
    """Write ``<out>/<run_id>/metrics/mean/<metric>/results/aggregate/evaluation.json`` and
    ``<out>/results.json`` (dlib's aggregated frame). Returns the files written."""
    out_dir = Path(out_dir)
    written, rows = [], []
    for run_id, metric, d in evaluation_dicts(runs, spec):
        path = out_dir / run_id / "metrics" / "mean" / metric / "results" / "aggregate" / "evaluation.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
        written.append(path)
        rows.append({**d, "path": str(path.relative_to(out_dir))})
    out_dir.mkdir(parents=True, exist_ok=True)
    agg = out_dir / "results.json"
    agg.write_text(pd.DataFrame(rows).to_json() if rows else "{}")
    written.append(agg)
    return written
