"""Results → per-run rows → aggregated rows → model selection → ranks (pandas / NumPy).

Everything here is a pure function of the study spec, the leaderboard options and the
per-run table, so that a release can be rebuilt from its stored per-run table alone.
"""
from __future__ import annotations

import hashlib
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# LeaderboardError and Options live in their own module (no pandas, no import circle); they
# are re-exported here for the callers that import them from this one.
from gmgbench.harness.leaderboard.options import MIN_RANK_SEEDS, LeaderboardError, Options, Reference, references
from gmgbench.harness.stale import code_signature
from gmgbench.harness.leaderboard.health_flag import run_columns as health_columns

__all__ = ["LeaderboardError", "Options", "Aggregate", "collect", "aggregate", "RUN_COLUMNS", "metric_columns",
           "normalise_runs", "unranked_reasons"]


# Per-run columns that are not metrics; every other column is a ``<metric>.<key>`` value.
RUN_COLUMNS = ("run_id", "dataset", "method", "setting", "seed", "status", "error", "steps", "final_loss",
               "train_seconds", "eval_seconds", "git_commit", "result_file", "result_sha256", "method_code",
               "health", "grad_share")  # regulariser health: harness/leaderboard/health_flag.py
_STR_COLUMNS = ("run_id", "dataset", "method", "setting", "status", "error", "git_commit", "result_file",
                "result_sha256", "method_code", "health")


@dataclass
class Aggregate:
    """What the renderer, the figures and the releases consume.

    Attributes:
      runs: one row per run the spec expects (``RUN_COLUMNS`` + metric columns), in spec order.
      table: one row per dataset × method × setting: counts, ``<col>.mean/.std/.n`` per metric,
        ``selected`` (shown on the board), ``settings`` (how many settings competed),
        ``<col>.reference``/``<col>.delta`` where the spec gives a reference.
      ranks: one row per board entry: ``avg_rank``, ``rank_lo``/``rank_hi`` (bootstrap
        interval), ``n_datasets`` and ``rank.<dataset>``; text version 3 adds ``unranked`` (why
        an entry has no rank, empty if ranked) and ``interval`` ("too few seeds" or empty).
    judged_seeds: the seeds behind every shown value, rank and claim; selection_seeds: the
      seeds whose mean chose each setting (the same seeds unless ``options.held_out``).
    With held-out selection, ``table`` also has ``selection_score``/``selection_n``: the
    selection metric's mean and count over the selection seeds.
    """

    study: str
    description: str
    datasets: list[str]
    metrics: list[str]
    options: Options
    runs: pd.DataFrame
    table: pd.DataFrame
    ranks: pd.DataFrame
    references: dict[tuple[str, str], Reference] = field(default_factory=dict)
    judged_seeds: tuple[int, ...] = ()
    selection_seeds: tuple[int, ...] = ()

    @property
    def judged(self) -> pd.DataFrame:
        """The per-run rows of the judged seeds (every status)."""
        return self.runs[self.runs["seed"].isin(self.judged_seeds)]

    @property
    def board(self) -> pd.DataFrame:
        """The rows shown: the selected setting per method × dataset (or every setting)."""
        return self.table[self.table["selected"]].reset_index(drop=True)

    def entry(self, method: str, setting: str) -> str:
        return f"{method} [{setting}]" if self.options.all_settings else method


# -- per-run rows --------------------------------------------------------------------------
def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect(spec, store) -> pd.DataFrame:
    """One row per run ``spec.runs()`` expects: ``done``, ``failed`` or ``missing``; then one
    per external model (``gmgbench.harness.dlib_format.entries.external_rows``).

    Results in the store that the spec does not expect (an older grid) are left out.
    """
    rows = []
    for run in spec.runs():
        rid = run.run_id
        row: dict[str, Any] = {"run_id": rid, "dataset": run.dataset, "method": run.method, "setting": run.setting,
                               "seed": int(run.seed), "status": "missing", "error": "", "steps": math.nan,
                               "final_loss": math.nan, "train_seconds": math.nan, "eval_seconds": math.nan,
                               "git_commit": "", "result_file": "", "result_sha256": "", "health": "",
                               "grad_share": math.nan}
        path = store.result_path(rid)
        if path.is_file():
            result = store.read_result(rid)
            row["status"] = "done" if result.get("status", "done") == "done" else "failed"
            row["result_file"] = str(path.relative_to(store.root))
            row["result_sha256"] = _sha256(path)
            training = result.get("training") or {}
            row["steps"] = _num(training.get("steps"))
            row["final_loss"] = _num((training.get("final") or {}).get("loss"))
            row["train_seconds"] = _num(training.get("train_seconds"))
            prov = result.get("provenance") or {}
            row["eval_seconds"] = _num(prov.get("eval_seconds"))
            row["git_commit"] = str(prov.get("git_commit", ""))
            row["method_code"] = code_signature(result)  # which version of the methods' code ran
            row.update(_metric_values(result, path))
            row.update(health_columns(result))
        else:
            failure = store.read_failure(rid)
            if failure is not None:
                row["status"] = "failed"
                row["error"] = str(failure.get("error", ""))
                fpath = store.failure_path(rid)
                row["result_file"] = str(fpath.relative_to(store.root))
                row["result_sha256"] = _sha256(fpath)
        rows.append(row)
    from gmgbench.harness.dlib_format.entries import external_rows  # no TensorFlow: reads stored results only

    try:
        external = list(external_rows(spec, store))
    except ValueError as err:
        raise LeaderboardError(str(err)) from None
    for ext, result, path in external:
        row = {**dict.fromkeys(("steps", "final_loss", "train_seconds", "eval_seconds"), math.nan), "error": "",
               "git_commit": "", "result_file": "", "result_sha256": "", **ext}
        if result is not None:
            row.update(result_file=str(path.relative_to(store.root)), result_sha256=_sha256(path),
                       eval_seconds=_num((result.get("provenance") or {}).get("eval_seconds")))
            row.update(_metric_values(result, path))
        rows.append(row)
    return normalise_runs(pd.DataFrame(rows))


def _metric_values(result: dict[str, Any], path) -> dict[str, float]:
    metrics = result.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise LeaderboardError(f"{path}: 'metrics' must be a mapping {{metric: {{key: value}}}}")
    out = {}
    for mname, values in metrics.items():
        if not isinstance(values, dict):
            raise LeaderboardError(f"{path}: metrics.{mname} must be a mapping {{key: value}}, got {values!r}")
        for key, v in values.items():
            if isinstance(v, numbers.Real) and not isinstance(v, bool):
                out[f"{mname}.{key}"] = float(v)
    return out


def _num(v) -> float:
    return float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else math.nan


def metric_columns(runs: pd.DataFrame) -> list[str]:
    return sorted(c for c in runs.columns if c not in RUN_COLUMNS)


def normalise_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Fixed column order and dtypes, so a table read back from parquet aggregates identically."""
    runs = runs.copy()
    for col in RUN_COLUMNS:
        if col not in runs.columns:
            runs[col] = "" if col in _STR_COLUMNS else math.nan
    for col in _STR_COLUMNS:
        runs[col] = runs[col].fillna("").astype(str)
    runs["seed"] = runs["seed"].astype("int64")
    for col in [c for c in runs.columns if c not in _STR_COLUMNS and c != "seed"]:
        runs[col] = runs[col].astype("float64")
    return runs[list(RUN_COLUMNS) + metric_columns(runs)].reset_index(drop=True)


# -- aggregation -----------------------------------------------------------------------------
def _stats(values: np.ndarray) -> tuple[float, float, int]:
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    return float(np.mean(values)), float(np.std(values, ddof=1)) if n > 1 else math.nan, n


def aggregate(spec, runs: pd.DataFrame, options: Options) -> Aggregate:
    """Aggregate per-run rows into the board: statistics, selection, references, ranks."""
    runs = normalise_runs(runs)
    datasets = [d for d, _ in spec.datasets]
    present = metric_columns(runs)
    if options.metrics is not None:
        unknown = [c for c in options.metrics if c not in present]
        if unknown and len(runs[runs.status == "done"]):
            raise LeaderboardError(f"{spec.path or '<study spec>'}: leaderboard.metrics: {unknown[0]!r} is in no "
                                   f"result; the results have {', '.join(present) or 'no metrics'}")
        cols = list(options.metrics)
    else:
        cols = present
    sel = options.selection
    cols = [sel] + [c for c in cols if c != sel]
    for c in cols:
        if c not in runs.columns:
            runs[c] = math.nan

    refs = references(spec)
    judged, selecting = options.judged_seeds(spec.seeds), options.selecting_seeds(spec.seeds)
    rows = []
    for (ds, method, setting), g in runs.groupby(["dataset", "method", "setting"], sort=False):
        done = g[g["status"] == "done"]
        # Run counts cover every seed of the setting; the values only the judged seeds.
        row: dict[str, Any] = {"dataset": ds, "method": method, "setting": setting, "expected": len(g),
                               "done": len(done), "failed": int((g["status"] == "failed").sum()),
                               "missing": int((g["status"] == "missing").sum())}
        shown = done[done["seed"].isin(judged)]
        codes = sorted(set(done["method_code"]) - {""})
        row["code_versions"] = len(codes)
        if len(codes) > 1 and not options.allow_stale:
            raise LeaderboardError(
                f"{ds} / {method} [{setting}]: its {len(done)} finished runs ran {len(codes)} versions of the method "
                f"code (runs {', '.join(done['run_id'])}); averaging them would mix two methods: rerun the stale "
                "ones (`gmgbench run STUDY --force`, `gmgbench status` names them) or average them anyway with "
                "`gmgbench leaderboard STUDY --allow-stale`")
        for c in cols:
            row[f"{c}.mean"], row[f"{c}.std"], row[f"{c}.n"] = _stats(shown[c].dropna().to_numpy(float))
        if options.held_out:
            chose = done.loc[done["seed"].isin(selecting), sel].dropna().to_numpy(float)
            row["selection_score"], _, row["selection_n"] = _stats(chose)
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        raise LeaderboardError(f"{spec.path or '<study spec>'}: the spec expects no runs")

    # Selection: the setting with the best mean over the selection seeds; ties and all-missing
    # go to the spec's first.
    score = "selection_score" if options.held_out else f"{sel}.mean"
    direction = options.direction(sel) or 1
    selected = np.zeros(len(table), bool)
    n_settings = np.zeros(len(table), int)
    for _, idx in table.groupby(["dataset", "method"], sort=False).groups.items():
        idx = list(idx)
        n_settings[idx] = len(idx)
        if options.all_settings:
            selected[idx] = True
            continue
        scores = direction * table.loc[idx, score].to_numpy(float)
        best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
        selected[idx[best]] = True
    table["selected"] = selected
    table["settings"] = n_settings

    for (ds, method), ref in refs.items():
        mask = (table["dataset"] == ds) & (table["method"] == method)
        for c, v in ref.values.items():
            if f"{c}.reference" not in table.columns:
                table[f"{c}.reference"] = math.nan
                table[f"{c}.delta"] = math.nan
            table.loc[mask, f"{c}.reference"] = v
            if f"{c}.mean" in table.columns:
                table.loc[mask, f"{c}.delta"] = table.loc[mask, f"{c}.mean"] - v

    agg = Aggregate(study=spec.name, description=spec.description, datasets=datasets, metrics=cols,
                    options=options, runs=runs, table=table, ranks=pd.DataFrame(), references=refs,
                    judged_seeds=judged, selection_seeds=selecting)
    agg.ranks = _ranks(agg)
    return agg


# -- ranks -----------------------------------------------------------------------------------
def _rank_desc(scores: np.ndarray) -> np.ndarray:
    """Rank along the last axis, 1 = highest, ties share the average rank."""
    from scipy.stats import rankdata

    return rankdata(-scores, axis=-1, method="average")


def unranked_reasons(agg: Aggregate, ds: str, method: str, setting: str) -> list[str]:
    """Why the shown setting of ``method`` on ``ds`` is not ranked (empty: it is), text version 3:
    an inert regulariser (the row measures the base model), judged seeds lost to failures (the
    survivors are not the seeds the others are judged on), fewer judged seeds with a value than
    ``options.min_seeds``."""
    from gmgbench.harness.leaderboard.health_flag import entry_health

    sel, judged = agg.options.selection, agg.judged
    g = judged[(judged["dataset"] == ds) & (judged["method"] == method) & (judged["setting"] == setting)]
    reasons = []
    if entry_health(judged, ds, method, setting)["state"] == "inert":
        reasons.append("inert")
    failed = int((g["status"] == "failed").sum())
    if failed:
        reasons.append(f"{failed} of {len(g)} judged seeds failed")
    n = int(g.loc[g["status"] == "done", sel].notna().sum())
    if n < agg.options.min_seeds:
        reasons.append(f"{n} judged seed{'s' if n != 1 else ''} (fewer than {agg.options.min_seeds})")
    return reasons


def _ranks(agg: Aggregate) -> pd.DataFrame:
    """Ranks of the shown entries per dataset by the selection metric, averaged over datasets.

    The interval resamples, per dataset and entry, the seeds of the shown setting with
    replacement (the selection itself is kept fixed), re-ranks, and takes the 2.5 and 97.5
    percentiles of the average rank over ``options.bootstrap`` resamples.

    Text version 3 ranks only what it can stand behind: an entry with a reason in
    :func:`unranked_reasons` on a dataset takes no part in that dataset's ranking, and has no
    average rank (column ``unranked`` says why); an interval needs ``MIN_RANK_SEEDS`` judged
    seeds on every dataset (else NaN, column ``interval`` "too few seeds").
    """
    opts, sel = agg.options, agg.options.selection
    sign = opts.direction(sel) or 1
    board = agg.board
    entries = list(dict.fromkeys(agg.entry(m, s) for m, s in zip(board["method"], board["setting"])))
    pos = {e: i for i, e in enumerate(entries)}
    n_e, n_d, B = len(entries), len(agg.datasets), opts.bootstrap
    point = np.full((n_e, n_d), np.nan)
    boot = np.full((B, n_e, n_d), np.nan)
    rng = np.random.default_rng(opts.bootstrap_seed)
    done = agg.judged[agg.judged["status"] == "done"]
    rules = opts.text_version >= 3
    why: dict[str, list[str]] = {e: [] for e in entries}
    seeds = np.full(n_e, np.iinfo(np.int64).max)
    for d, ds in enumerate(agg.datasets):
        rows = board[board["dataset"] == ds]
        have, means, draws = [], [], []
        for _, r in rows.iterrows():
            vals = done.loc[(done["dataset"] == ds) & (done["method"] == r["method"]) & (done["setting"] == r["setting"]),
                            sel].dropna().to_numpy(float)
            e = agg.entry(r["method"], r["setting"])
            seeds[pos[e]] = min(seeds[pos[e]], len(vals))
            if rules:
                reasons = unranked_reasons(agg, ds, r["method"], r["setting"])
                why[e] += [f"{ds}: {x}" if n_d > 1 else x for x in reasons]
                if reasons:
                    continue
            if len(vals) == 0:
                continue
            have.append(pos[agg.entry(r["method"], r["setting"])])
            means.append(sign * vals.mean())
            draws.append(sign * vals[rng.integers(0, len(vals), size=(B, len(vals)))].mean(axis=1))
        if not have:
            continue
        point[have, d] = _rank_desc(np.array(means))
        boot[:, have, d] = _rank_desc(np.stack(draws, axis=1))
    with warnings.catch_warnings():
        # Entries without any value are all-NaN rows: their NaN result is the answer.
        warnings.simplefilter("ignore", RuntimeWarning)
        avg = np.nanmean(point, axis=1)
        boot_avg = np.nanmean(boot, axis=2)
        lo = np.nanpercentile(boot_avg, 2.5, axis=0) if n_e else np.zeros(0)
        hi = np.nanpercentile(boot_avg, 97.5, axis=0) if n_e else np.zeros(0)
    out = pd.DataFrame({"entry": entries, "avg_rank": avg, "rank_lo": lo, "rank_hi": hi,
                        "n_datasets": np.isfinite(point).sum(axis=1).astype(int)})
    for d, ds in enumerate(agg.datasets):
        out[f"rank.{ds}"] = point[:, d]
    if rules:
        unranked = np.array([bool(why[e]) for e in entries], bool)
        few = np.array([int(s) < MIN_RANK_SEEDS for s in seeds], bool) if n_e else np.zeros(0, bool)
        out.loc[unranked, ["avg_rank", "rank_lo", "rank_hi"]] = math.nan
        out.loc[few, ["rank_lo", "rank_hi"]] = math.nan
        out["unranked"] = ["; ".join(why[e]) for e in entries]
        out["interval"] = np.where(unranked, "", np.where(few, "too few seeds", ""))
    return out
