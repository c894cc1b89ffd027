"""The launch journal (``<store>/launches/``), the one-launcher-per-store lock, and
:func:`recover`, which finishes or undoes what a launcher that died left half-done."""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any, Callable

import submitit

from gmgbench.harness.fileio import atomic_write_json, file_lock, load_json
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.cluster import SlurmError

__all__ = ["Journal", "launch_lock", "log_paths", "record_jobs", "recover"]


def log_paths(store: ResultsStore, job_id: str) -> tuple[Path, Path]:
    """(stdout, stderr) of a submitit job, e.g. ``slurm/123_4_0_log.err``."""
    paths = submitit.core.utils.JobPaths(store.slurm_dir(), job_id=job_id, task_id=0)
    return paths.stdout, paths.stderr


@contextlib.contextmanager
def launch_lock(store: ResultsStore):
    """One launcher per store at a time; the OS drops the lock when a launcher dies."""
    with file_lock(store.launch_lock_path()) as held:
        if not held:
            raise SlurmError(f"another `gmgbench launch` is running on {store.root}; wait for it to finish")
        yield


class Journal:
    """``launches/<launch>.json``: every array of one launch and how far it got.

    An array goes ``submitting`` → ``held`` (job id known, pickles in place) → ``released``;
    or ``abandoned`` (cancelled before it ran, its runs are free again) or ``failed``
    (sbatch refused it).
    """

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path, self.doc = path, doc

    @classmethod
    def new(cls, store: ResultsStore, study: str, token: str) -> "Journal":
        path = store.launches_dir() / f"{time.strftime('%Y%m%d-%H%M%S')}-{token}.json"
        return cls(path, {"study": study, "token": token, "created": time.time(), "arrays": []})

    @classmethod
    def all(cls, store: ResultsStore) -> list["Journal"]:
        return [cls(p, load_json(p, what="launch journal", error=SlurmError))
                for p in sorted(store.launches_dir().glob("*.json"))]

    @property
    def arrays(self) -> list[dict[str, Any]]:
        return self.doc["arrays"]

    def save(self) -> None:
        atomic_write_json(self.path, self.doc)


def record_jobs(store: ResultsStore, entry: dict[str, Any]) -> None:
    """Give every run of a submitted array its job id (skipping runs that have it already)."""
    for i, run_id in enumerate(entry["runs"]):
        job_id = entry["job_ids"][i]
        history = store.jobs(run_id)
        if history and history[-1].get("job_id") == job_id:
            continue
        store.record_job(run_id, {"job_id": job_id, "array": entry["name"], "time": time.time(),
                                  "log": str(log_paths(store, job_id)[1])})


def recover(store: ResultsStore, say: Callable[[str], None] = print) -> None:
    """Finish or undo what a launcher that died left half-done (see :mod:`gmgbench.harness.slurm`)."""
    unfinished = [(j, a) for j in Journal.all(store) for a in j.arrays if a["state"] in ("submitting", "held")]
    if not unfinished:
        return
    live = {row["name"]: row for row in cluster.queue()} if any(a["state"] == "submitting" for _, a in unfinished) else {}
    for journal, entry in unfinished:
        if entry["state"] == "submitting":
            row = live.get(entry["name"])
            if row is None:  # sbatch never went through: the runs were not submitted
                entry["state"] = "abandoned"
                say(f"launch {journal.doc['token']}: array {entry['name']} never reached Slurm; its runs are free again")
                journal.save()
                continue
            base = row["array_job_id"]
            n = len(entry["runs"])
            job_ids = [f"{base}_{i}" for i in range(n)] if n > 1 else [base]
            pickles = [submitit.core.utils.JobPaths(store.slurm_dir(), job_id=j).submitted_pickle for j in job_ids]
            if all(p.is_file() for p in pickles):
                entry.update(state="held", job_id=base, job_ids=job_ids)
                journal.save()
                say(f"launch {journal.doc['token']}: adopting array {entry['name']} (job {base})")
            else:  # submitted, but its task pickles were never placed: it must not run
                cluster.command(["scancel", base])
                entry.update(state="abandoned", job_id=base)
                journal.save()
                say(f"launch {journal.doc['token']}: cancelled incomplete array {entry['name']} (job {base}); its runs are free again")
                continue
        record_jobs(store, entry)
        cluster.release(entry["job_id"])
        entry["state"] = "released"
        journal.save()
        say(f"launch {journal.doc['token']}: released array {entry['name']} (job {entry['job_id']})")
