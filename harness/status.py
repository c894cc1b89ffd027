"""Where each run of a study stands — done, running (here or in Slurm), queued, held,
failed or missing — from the results store, the run locks of local ``gmgbench run``
workers and, for runs with a recorded job, Slurm; and the text ``gmgbench status`` prints."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmgbench.harness.executors import is_running_here
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.cluster import RUNNING, JobState
from gmgbench.harness.slurm.journal import log_paths
from gmgbench.harness.spec import RunSpec, StudySpec

__all__ = ["RunStatus", "STATES", "classify", "collect_status", "format_status", "checkpoint_step"]

STATES = ("done", "running", "queued", "held", "failed", "corrupt", "missing")


@dataclass
class RunStatus:
    run: RunSpec
    status: str  # one of STATES
    job_id: str | None = None
    slurm: JobState | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"run_id": self.run.run_id, "name": self.run.name, "status": self.status, "job_id": self.job_id,
             "note": self.note}
        if self.slurm:
            d["slurm"] = dataclasses.asdict(self.slurm)
        return d


def classify(runs: list[RunSpec], store: ResultsStore, use_slurm: bool = True,
             plugin_dirs: tuple[str, ...] = ()) -> list[RunStatus]:
    """Each run's state from the store and (for runs with a recorded job) from Slurm;
    ``plugin_dirs``: where the spec loads its plugins now (stale is judged by those files)."""
    last_job, unrecorded, rerun = {}, {}, set()
    for r in runs:
        if not store.has_result(r.run_id):
            jobs = store.jobs(r.run_id)
            if jobs:
                last_job[r.run_id] = jobs[-1]["job_id"]
        elif _mtime(store.jobs_path(r.run_id)) > _mtime(store.result_path(r.run_id)):
            # A job recorded after the result was written: `launch --force`/`--rerun-stale`
            # reruns it (only such done runs are asked about: sacct for every job is slow).
            last_job[r.run_id] = store.jobs(r.run_id)[-1]["job_id"]
            rerun.add(r.run_id)
    if use_slurm:
        # Runs of an array a launcher submitted but died before recording (its journal knows).
        unrecorded = _journalled_jobs(store, {r.run_id for r in runs if not store.has_result(r.run_id)} - set(last_job))
        last_job.update(unrecorded)
    states = cluster.job_states(last_job.values()) if (use_slurm and last_job) else {}
    out = []
    for r in runs:
        state, why = store.result_state(r.run_id)
        jid = last_job.get(r.run_id)
        st = states.get(jid) if jid else None
        if state == "done" and r.run_id in rerun and st is not None and st.active:
            out.append(RunStatus(r, "held" if st.held else "running" if st.state in RUNNING else "queued", jid, st,
                                 "a rerun of a done run (launch --force / --rerun-stale): its stored result stays "
                                 "until the rerun completes"))
            continue
        if state == "done":
            out.append(RunStatus(r, "done", note=_stale_note(store, r.run_id, plugin_dirs)))
            continue
        fstate, fwhy = store.failure_state(r.run_id)
        failure = store.read_failure(r.run_id) if fstate == "failed" else None
        if state == "corrupt" or fstate == "corrupt":
            # A corrupt file is never "done"; it blocks nothing else, and --repair fixes it.
            out.append(RunStatus(r, "corrupt", jid, st, why or fwhy))
        elif st is not None and st.active:
            status = "held" if st.held else "running" if st.state in RUNNING else "queued"
            note = ("submitted by a launch that stopped before recording it; the next `gmgbench launch` "
                    "adopts and releases it") if r.run_id in unrecorded else ""
            out.append(RunStatus(r, status, jid, st, note))
        elif is_running_here(store.workdir(r.run_id)):
            out.append(RunStatus(r, "running", None, None, "trained by a local `gmgbench run`"))
        elif failure is not None:
            out.append(RunStatus(r, "failed", jid, st, failure.get("error", "")))
        elif st is not None and st.state not in ("COMPLETED", "UNKNOWN"):
            out.append(RunStatus(r, "failed", jid, st, f"Slurm: {st.state} (exit {st.exit_code})"))
        elif st is not None and st.state == "COMPLETED":
            out.append(RunStatus(r, "missing", jid, st, "its job completed but no result is stored"))
        else:
            out.append(RunStatus(r, "missing", jid, st))
    return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _journalled_jobs(store: ResultsStore, wanted: set[str]) -> dict[str, str]:
    """``{run id: job id}`` for runs in arrays that a launcher submitted but had not recorded
    in ``jobs/`` when it stopped (journal state ``submitting`` or ``held``), found by the
    array's unique job name in ``squeue`` when the journal has no job id yet."""
    from gmgbench.harness.slurm.journal import Journal

    if not wanted:
        return {}
    try:
        entries = [a for j in Journal.all(store) for a in j.arrays if a.get("state") in ("submitting", "held")]
    except cluster.SlurmError:  # an unreadable journal: `launch` names it
        return {}
    entries = [a for a in entries if wanted & set(a.get("runs", []))]
    named = {}
    if any(not a.get("job_ids") for a in entries):
        named = {row["name"]: row for row in cluster.queue()}
    out = {}
    for a in entries:
        ids = a.get("job_ids")
        if not ids:
            row = named.get(a["name"])
            if row is None:
                continue  # never reached Slurm: the runs are free
            n = len(a["runs"])
            ids = [f"{row['array_job_id']}_{i}" for i in range(n)] if n > 1 else [row["array_job_id"]]
        out.update({rid: jid for rid, jid in zip(a["runs"], ids) if rid in wanted})
    return out


def _stale_note(store: ResultsStore, run_id: str, plugin_dirs: tuple[str, ...] = ()) -> str:
    """``"stale: gmg: methods/ot/torch_gw.py changed"`` if the method code changed since the run."""
    from gmgbench.harness.stale import recorded_changes

    changes = recorded_changes(store.code_record(run_id), plugin_dirs)
    return f"stale: {'; '.join(changes)}" if changes else ""


def checkpoint_step(path: Path) -> int | None:
    """The step of a run's checkpoint, or None (no checkpoint, or unreadable: only a hint).
    Loaded weights-only: a planted pickle never runs."""
    from gmgbench.harness.checkpoints import checkpoint_step as step

    return step(path)


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
    nxt = store.next_workdir(run.run_id)
    step = checkpoint_step((nxt if nxt.is_dir() else store.workdir(run.run_id)) / "checkpoint.pt")
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
