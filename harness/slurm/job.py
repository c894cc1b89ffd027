"""The array task: one run as a submitit callable, requeued (and resumed) on preemption or
time limit, with one line per start/requeue/end in ``work/<run_id>/attempts.jsonl``."""
from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import submitit

from gmgbench.harness.results import ResultsStore, slurm_job_id
from gmgbench.harness.spec import RunSpec

__all__ = ["TrainJob", "RunFailed", "attempts"]


class RunFailed(RuntimeError):
    """Raised in the job so that Slurm records FAILED: a failure is never reported as success."""


class TrainJob(submitit.helpers.Checkpointable):
    """One run as a submitit callable; requeued (and resumed) on preemption or time limit."""

    def __init__(self, run: RunSpec, store_root: str, plugins: tuple[str, ...] = (), callbacks: tuple = (),
                 force: bool = False):
        self.run = run
        self.store_root = str(store_root)
        self.plugins = tuple(plugins)
        self.callbacks = tuple(callbacks)  # (name, params) of run callbacks, e.g. TensorBoard
        # `launch --force` / `--rerun-stale`: `run --force`'s way, trained beside the old run in
        # work/<id>.next/ and swapped in only when complete; a requeued start resumes there.
        self.force = bool(force)

    def __call__(self) -> dict[str, str]:
        from gmgbench.harness.checkpoints import checkpoint_step  # late: torch, in the job only
        from gmgbench.harness.executors import execute

        for backend in ("PYTORCH", "JAX", "TENSORFLOW", "CUPY"):
            os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        from gmgbench.harness import plugins as plugin_loader

        # The study's methods first, in load_spec's order (plugin files, then installed
        # packages): a broken package is one warning line in this job's log (workers of
        # `gmgbench run` stay quiet: their parent said it when the study loaded).
        with contextlib.suppress(plugin_loader.PluginError):  # execute() fails the run, naming the file
            for p in self.plugins:
                plugin_loader.load_plugin_file(p)
        plugin_loader.load_entry_points()
        store = ResultsStore(self.store_root)
        run = self.run
        job = slurm_job_id() or "?"
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        force = getattr(self, "force", False)  # a job pickled before --force existed has none
        # A forced run's first start begins afresh beside the old run; a requeued one resumes there.
        resume_forced = force and restarts > 0
        ckpt = store.checkpoint_path(run.run_id, next=force)
        step = checkpoint_step(ckpt) if (resume_forced or not force) else None
        self._attempt = {"job": job, "restarts": restarts}  # for checkpoint(), which submitit calls on requeue
        if restarts and _last_event(store, run.run_id) == "start":
            # The previous start never got to write how it ended (a requeue without the
            # signal: `scontrol requeue`, a node failure): say it was requeued.
            _note_attempt(store, run.run_id, "requeued", job=job, restarts=restarts - 1, noted="at restart")
        refused = _refused_checkpoint(ckpt) if step is not None else ""
        if refused:
            # Say so before any "resuming" line, record the failure, and exit non-zero: Slurm
            # must record FAILED, never COMPLETED, for a run that did not train.
            store.write_failure(run.run_id, {"run": run.to_dict(), "error": refused, "traceback": "",
                                             "workdir": str(ckpt.parent)})
            _note_attempt(store, run.run_id, "end", job=job, restarts=restarts, status="failed")
            raise RunFailed(f"{run.name}: {refused} (failure record: {store.failure_path(run.run_id)})")
        print(f"gmgbench: {run.name} (run {run.run_id}) in job {job}, start {restarts + 1}, "
              + ("rerun beside the stored run (--force), " if force else "")
              + (f"resuming from the checkpoint at step {step}" if step is not None else "from step 0"), flush=True)
        _note_attempt(store, run.run_id, "start", job=job, restarts=restarts, step=step)
        # A run with no thread setting uses the CPUs Slurm gave it, not every core of the node.
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0) if not run.train.num_threads else 0
        try:
            # A job's output is a log file: progress as plain lines (every tenth of the steps, each metric).
            outcome = execute(run, self.store_root, force="resume" if resume_forced else force, progress="lines",
                              plugins=self.plugins, num_threads=threads, callbacks=getattr(self, "callbacks", ()))
        except SystemExit:
            # submitit requeued this job on preemption/timeout and exits from inside training:
            # the run is interrupted, not failed, and resumes from its checkpoint.
            store.clear_failure(run.run_id)
            if _last_event(store, run.run_id) != "requeued":  # checkpoint() may have noted it
                _note_attempt(store, run.run_id, "requeued", job=job, restarts=restarts)
            raise
        _note_attempt(store, run.run_id, "end", job=job, restarts=restarts, status=outcome.status)
        if outcome.status in ("failed", "corrupt"):  # corrupt: a file of the run does not load
            raise RunFailed(f"{run.name}: {outcome.error} (failure record: {store.failure_path(run.run_id)})")
        print(f"gmgbench: {run.name}: {outcome.status}", flush=True)
        return {"run_id": run.run_id, "status": outcome.status}

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # Training checkpoints itself every train.checkpoint_every steps; the requeued job
        # is this same callable, which resumes from that file. submitit calls this on
        # preemption or time-out, just before it requeues the job: the requeue line is
        # written here, as the process may not get further (docs/slurm.md).
        attempt = getattr(self, "_attempt", None)
        if attempt is not None:
            store = ResultsStore(self.store_root)
            if _last_event(store, self.run.run_id) == "start":
                _note_attempt(store, self.run.run_id, "requeued", **attempt)
        return submitit.helpers.DelayedSubmission(self)


def _refused_checkpoint(path) -> str:
    """Why resuming from the checkpoint at ``path`` would be refused (it was written by other
    method code than the study's methods, loaded by now), or ``""``. An unreadable checkpoint
    is not judged here: training names it."""
    from gmgbench.harness import checkpoints
    from gmgbench.harness.results import StoreError
    from gmgbench.harness.stale import code_changes

    try:
        recorded = checkpoints.load(path, what="checkpoint").get("method_code")
    except StoreError:  # execute() reports it, as this run's failure
        return ""
    changed = code_changes(recorded)
    if not changed:
        return ""
    return (f"StaleCheckpoint: {path}: written by other method code ({'; '.join(changed)}); resuming would mix two "
            "versions of the method, so this job did not train: `gmgbench launch STUDY --retry-failed` starts "
            "the run over (the old files stay until the new run completes)")


def _note_attempt(store: ResultsStore, run_id: str, event: str, **info: Any) -> None:
    """Append to ``work/<run_id>/attempts.jsonl``: one line per start/requeue/end of a job."""
    path = store.attempts_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event, "time": time.time(), "host": os.uname().nodename, **info}, default=str)
    with open(path, "a") as f:  # one short O_APPEND write: lines of concurrent writers never interleave
        f.write(line + "\n")


def _last_event(store: ResultsStore, run_id: str) -> str | None:
    try:
        events = attempts(store, run_id)
    except ValueError:  # a torn line: no judgement from it
        return None
    return events[-1].get("event") if events else None


def attempts(store: ResultsStore, run_id: str) -> list[dict[str, Any]]:
    path = store.attempts_path(run_id)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
