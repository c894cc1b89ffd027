"""Each run's state — done, running (here or in Slurm), queued, held, failed, corrupt or
missing — from the results store, the run locks of local ``gmgbench run`` workers and, for
runs with a recorded job, Slurm. ``gmgbench status`` reports it (harness/status.py), and
``gmgbench launch`` submits by it: both import it from here, so neither imports the other."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmgbench.harness.executors import is_running_here
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.cluster import RUNNING, JobState
from gmgbench.harness.slurm.journal import Journal
from gmgbench.harness.spec import RunSpec
from gmgbench.harness.stale import recorded_changes

__all__ = ["RunStatus", "STATES", "classify"]

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
        elif is_running_here(store, r.run_id):
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
    changes = recorded_changes(store.code_record(run_id), plugin_dirs)
    return f"stale: {'; '.join(changes)}" if changes else ""
