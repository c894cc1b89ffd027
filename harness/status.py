"""``gmgbench status``: where each run of a study stands (classified by
:mod:`gmgbench.harness.slurm.states`, which ``gmgbench launch`` submits by too), with each
job's log, the last stderr lines of a failure, a running run's progress and the regularisers'
health; and the text it prints."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.journal import log_paths
from gmgbench.harness.slurm.states import STATES, classify
from gmgbench.harness.spec import RunSpec, StudySpec

__all__ = ["collect_status", "format_status"]

def _tail(path: Path, lines: int) -> list[str]:
    if not path.is_file():
        return []
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        text = f.read().decode(errors="replace")
    return text.splitlines()[-lines:]


def _progress(store: ResultsStore, run: RunSpec) -> str:
    # A --force rerun (local, or launch --force/--rerun-stale) trains in work/<id>.next/: the old
    # checkpoint beside it says nothing about how far the rerun is.
    from gmgbench.harness.checkpoints import checkpoint_step  # late: torch only when a run is running

    step = checkpoint_step(store.checkpoint_path(run.run_id, next=store.next_workdir(run.run_id).is_dir()))
    return f"step {step}/{run.train.steps}" if step is not None else "starting"


def collect_status(spec: StudySpec, store: ResultsStore, tail: int = 5) -> dict[str, Any]:
    """The study's state as a JSON-able dict: counts, and per run its job, log and last stderr lines."""
    runs = spec.runs()
    from gmgbench.harness.stale import plugin_dirs

    statuses = classify(runs, store, use_slurm=cluster.available(), plugin_dirs=plugin_dirs(spec.plugins))
    rows = []
    for st in statuses:
        row = st.to_dict()
        if st.job_id:
            out, err = log_paths(store, st.job_id)
            row["log"], row["stdout"] = str(err), str(out)
        if st.status == "running":
            row["progress"] = _progress(store, st.run)
        if st.status == "failed":
            row["stderr_tail"] = _tail(Path(row["log"]), tail) if st.job_id else []
            if store.read_failure(st.run.run_id) is not None:
                row["failure_record"] = str(store.failure_path(st.run.run_id))
        rows.append(row)
    counts = {s: sum(r["status"] == s for r in rows) for s in STATES}
    counts["stale"] = sum(r["status"] == "done" and r["note"].startswith("stale:") for r in rows)
    from gmgbench.harness.health import status_rows

    health = status_rows(store, [st.run for st in statuses if st.status == "done"])
    return {"study": spec.name, "spec": str(spec.path or spec.name), "store": str(store.root), "total": len(rows),
            "counts": counts, "runs": rows, "health": health}


def _launch_command(report: dict[str, Any], flag: str) -> str:
    """The ``gmgbench launch`` line for this study and store (the profile is the user's)."""
    import shlex

    spec = shlex.quote(report.get("spec") or report["study"])
    return f"gmgbench launch {spec} --profile PROFILE --results {shlex.quote(report['store'])} {flag}"


def format_status(report: dict[str, Any]) -> str:
    c, n = report["counts"], report["total"]
    pct = 100.0 * c["done"] / n if n else 100.0
    lines = [f"{report['study']}: {c['done']}/{n} done ({pct:.0f}%), {c['running']} running, "
             f"{c['queued'] + c['held']} queued, {c['failed']} failed, "
             + (f"{c['corrupt']} corrupt, " if c.get("corrupt") else "")
             + f"{c['missing']} not submitted  [{report['store']}]"]
    stale = [r for r in report["runs"] if r["status"] == "done" and r.get("note", "").startswith("stale:")]
    if stale:
        lines.append(f"stale ({len(stale)} done, but their method code changed since; "
                     f"`{_launch_command(report, '--rerun-stale')}` reruns just these on Slurm, beside their results; "
                     "`gmgbench run --force` reruns every run here):")
        lines += [f"  {r['name']}  ({r['run_id']})  {r['note'][len('stale: '):]}" for r in stale]
    for status in STATES[1:]:
        rows = [r for r in report["runs"] if r["status"] == status]
        if not rows:
            continue
        lines.append(f"{status}:")
        for r in rows:
            job = f"  job {r['job_id']}" if r.get("job_id") else ""
            extra = f"  {r['progress']}" if r.get("progress") else ""
            if status == "running" and r.get("note"):
                extra += f"  ({r['note']})"
            lines.append(f"  {r['name']}  ({r['run_id']}){job}{extra}")
            if status == "failed":
                if r.get("note"):
                    lines.append(f"    error: {r['note']}")
                if r.get("log"):
                    lines.append(f"    log: {r['log']}")
                if r.get("failure_record"):
                    lines.append(f"    failure record: {r['failure_record']}")
                lines.extend(f"    | {t}" for t in r.get("stderr_tail", []))
            elif status in ("missing", "corrupt", "held", "queued") and r.get("note"):
                lines.append(f"    {r['note']}")
    from gmgbench.harness.health import format_health

    lines += format_health(report.get("health") or [])
    if c.get("corrupt"):
        lines.append("corrupt files: `gmgbench run STUDY --repair` moves them to quarantine/ and reruns their runs")
    if c["failed"]:
        # Works whatever the failure: a run whose checkpoint the old (buggy) method code wrote
        # starts over under --retry-failed instead of being refused again.
        lines.append(f"fix the cause, then `{_launch_command(report, '--retry-failed')}` (a run whose checkpoint other "
                     "method code wrote starts over; a changed hyperparameter is a new run: plain launch)")
    return "\n".join(lines)
