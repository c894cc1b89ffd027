"""The submit sequence of ``gmgbench launch``: recover, plan, journal, submit held,
record job ids, release (the order that makes a dying launcher safe; see
:mod:`gmgbench.harness.slurm`)."""
from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from typing import Callable

import submitit

from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.cluster import SlurmError
from gmgbench.harness.slurm.job import TrainJob
from gmgbench.harness.slurm.journal import Journal, launch_lock, record_jobs, recover
from gmgbench.harness.slurm.plan import ArrayPlan, plan_arrays, resource_notes
from gmgbench.harness.slurm.profile import Profile, check_resources
from gmgbench.harness.slurm.states import STATES, classify
from gmgbench.harness.spec import StudySpec
from gmgbench.harness.stale import plugin_dirs

__all__ = ["launch", "PAUSE_ENV"]

# Test seam: seconds to sleep after an array is submitted and before its job ids are
# recorded (the launcher's most fragile moment); the Slurm tests kill the launcher there.
PAUSE_ENV = "GMGBENCH_LAUNCH_PAUSE_AFTER_SUBMIT"
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default, used only when the cluster cannot be asked


def _executor(store: ResultsStore, profile: Profile, plan: ArrayPlan) -> submitit.AutoExecutor:
    kwargs = {"slurm_max_num_timeout": profile.max_num_timeout}
    if profile.python:
        kwargs["slurm_python"] = profile.python
    ex = submitit.AutoExecutor(folder=store.slurm_dir(), cluster="slurm", **kwargs)
    res = dict(plan.resources)
    extra = {**(res.pop("slurm_additional_parameters", None) or {}), "hold": True}
    ex.update_parameters(name=plan.name, slurm_array_parallelism=plan.parallelism,
                         slurm_additional_parameters=extra, **res)
    return ex


def launch(spec: StudySpec, store: ResultsStore, profile: Profile, *, dry_run: bool = False,
           retry_failed: bool = False, force: bool = False, rerun_stale: bool = False,
           say: Callable[[str], None] = print, verbose: bool = False) -> list[ArrayPlan]:
    """Submit every run of ``spec`` that is not done, queued or running; returns the arrays.

    ``retry_failed`` adds the failed runs; one whose checkpoint was written by other method
    code (the method was fixed since) starts over instead of having its job refuse it.
    ``force`` adds every done and failed run, ``rerun_stale`` the done runs whose method code
    changed (and failed runs with such a checkpoint): each reruns as ``gmgbench run --force``
    does, beside its stored result, swapped in only when complete. A run queued or running
    in Slurm is never submitted again. ``dry_run`` only plans: a summary per array and a
    count of runs per method and dataset (``verbose``: every run, too)."""
    runs = spec.runs()
    for r in runs:  # resources come from the spec too: check them before anything is submitted
        check_resources(str(spec.path or "<study spec>"), f"resources (method {r.method})", r.resources)
    store = ResultsStore(store.root.resolve())
    if dry_run:
        return _launch_locked(spec, store, profile, runs, dry_run=True, retry_failed=retry_failed, force=force,
                              rerun_stale=rerun_stale, say=say, verbose=verbose)
    with launch_lock(store):
        recover(store, say)
        return _launch_locked(spec, store, profile, runs, dry_run=False, retry_failed=retry_failed, force=force,
                              rerun_stale=rerun_stale, say=say)


def _by_method_and_dataset(runs) -> str:
    """Runs to submit, counted per method (rows) and dataset (columns)."""
    from tabulate import tabulate

    datasets = list(dict.fromkeys(r.dataset for r in runs))
    methods = list(dict.fromkeys(r.method for r in runs))
    counts = {(r.method, r.dataset): 0 for r in runs}
    for r in runs:
        counts[r.method, r.dataset] += 1
    rows = [[m, *(counts.get((m, d), 0) for d in datasets), sum(counts.get((m, d), 0) for d in datasets)]
            for m in methods]
    rows.append(["total", *(sum(counts.get((m, d), 0) for m in methods) for d in datasets), len(runs)])
    return "runs to submit:\n" + tabulate(rows, headers=["method", *datasets, "total"], tablefmt="simple")


def status_command(spec: StudySpec, store: ResultsStore) -> str:
    """The ``gmgbench status`` line to follow a launch with: always with ``--results``, since
    without it status would look in ``results/<study>``, maybe another (empty) store."""
    return f"gmgbench status {shlex.quote(str(spec.path or spec.name))} --results {shlex.quote(str(store.root))}"


def _n(count: int, noun: str) -> str:
    """``1 run``, ``2 runs``: the launcher's counts read as English."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _stale_checkpoint(store: ResultsStore, run, plugin_folders: tuple[str, ...] = ()) -> bool:
    """Whether the run's checkpoint was written by other method code (its job would refuse it);
    plugins are judged by the files the spec loads now (``plugin_folders``)."""
    from gmgbench.harness import checkpoints
    from gmgbench.harness.results import StoreError
    from gmgbench.harness.stale import code_changes

    path = store.checkpoint_path(run.run_id)
    if not path.is_file():
        return False
    try:
        return bool(code_changes(checkpoints.load(path, what="checkpoint").get("method_code"),
                                 plugin_dirs=plugin_folders))
    except StoreError:
        return False  # unreadable: the job names it


def _launch_locked(spec, store, profile, runs, *, dry_run, retry_failed, say, force=False, rerun_stale=False,
                   verbose=False) -> list[ArrayPlan]:
    has_slurm = cluster.available()
    if not dry_run and not has_slurm:
        raise SlurmError("squeue not found: launch from a Slurm login node, or use --dry-run")
    folders = plugin_dirs(spec.plugins)  # stale is judged by the plugin files the spec loads now
    statuses = classify(runs, store, use_slurm=has_slurm, plugin_dirs=folders)
    if not has_slurm:
        say("(Slurm not reachable here: runs with a recorded job count as not submitted in this plan)")
    counts = {s: sum(x.status == s for x in statuses) for s in STATES}
    stale_done = [x.run for x in statuses if x.status == "done" and x.note.startswith("stale:")]
    forced: set[str] = set()  # run ids submitted the --force way: beside the stored run, swapped in when complete
    todo = []
    for x in statuses:
        rid = x.run.run_id
        if x.status == "missing":
            todo.append(x.run)
            if force:
                forced.add(rid)
        elif x.status == "done" and (force or (rerun_stale and x.note.startswith("stale:"))):
            todo.append(x.run)
            forced.add(rid)
        elif x.status == "failed" and (retry_failed or force or rerun_stale):
            stale_ckpt = _stale_checkpoint(store, x.run, folders)
            if force or stale_ckpt:
                todo.append(x.run)
                forced.add(rid)
            elif retry_failed:
                todo.append(x.run)
    say(f"{spec.name}: {_n(len(runs), 'run')}: {counts['done']} done, {counts['running']} running, "
        f"{counts['queued'] + counts['held']} queued, {counts['failed']} failed, {counts['missing']} not submitted")
    if counts["corrupt"]:
        say(f"  {_n(counts['corrupt'], 'run')} with a corrupt result or failure record, not submitted "
            "(see `gmgbench status`; `gmgbench run STUDY --repair` moves the files aside and reruns them)")
    submitted = {r.run_id for r in todo}
    left = sum(1 for x in statuses if x.status == "failed" and x.run.run_id not in submitted)
    if left:
        say(f"  {_n(left, 'failed run')} not resubmitted (see `gmgbench status`; --retry-failed resubmits them)")
    if stale_done and not (force or rerun_stale):
        say(f"  {_n(len(stale_done), 'done run')} stale (their method code changed since they ran), kept; "
            "--rerun-stale reruns them beside their results")
    if forced:
        fresh = sum(1 for x in statuses if x.run.run_id in forced and x.status == "failed")
        say(f"  {_n(len(forced), 'run')} to start over beside the stored files, which are replaced only when the "
            "new run completes" + (f" ({_n(fresh, 'failed run')}: a checkpoint of other method code, or --force)"
                                   if fresh else ""))

    cluster_max = cluster.cluster_max_array_size() if has_slurm else None
    limits = [m for m in (profile.max_array_size, cluster_max) if m]
    max_size = min(limits) if limits else DEFAULT_MAX_ARRAY_SIZE
    source = ("the profile" if profile.max_array_size == max_size else "the cluster's MaxArraySize") if limits \
        else f"a default (no Slurm reachable, no max_array_size in {profile.path})"
    token = uuid.uuid4().hex[:8]
    plans = plan_arrays(todo, profile, max_size, f"gmg-{spec.name}-{token}")
    if not plans:
        say("nothing to submit")
        return plans
    running = sum(min(p.parallelism, len(p.runs)) for p in plans)
    say(f"{'would submit' if dry_run else 'submitting'} {_n(len(todo), 'run')} as {_n(len(plans), 'array')} "
        f"(at most {max_size} tasks each, from {source}; at most {running} running at once)")
    if running > profile.array_parallelism:
        say(f"  warning: {len(plans)} arrays need at least one running task each, more than "
            f"array_parallelism={profile.array_parallelism}")
    for note in resource_notes(todo, profile, verbose=verbose):
        say(f"  resources: {note}")
    if dry_run:
        for plan in plans:
            say(f"array {plan.name}: --array={plan.array_spec}  {_n(len(plan.runs), 'run')}  "
                f"{json.dumps(plan.resources, sort_keys=True)}")
            if verbose:
                for i, r in enumerate(plan.runs):
                    say(f"  [{i}] {r.run_id}  {r.name}")
        say(_by_method_and_dataset(todo))
        if not verbose:
            say("(--verbose lists every run)")
        return plans

    journal = Journal.new(store, spec.name, token)
    pause = float(os.environ.get(PAUSE_ENV, "0") or 0)
    for plan in plans:
        entry = {"name": plan.name, "runs": [r.run_id for r in plan.runs], "resources": plan.resources,
                 "array": plan.array_spec, "state": "submitting", "time": time.time()}
        journal.arrays.append(entry)
        journal.save()  # before sbatch: a dead launcher's successor finds the array by this name
        ex = _executor(store, profile, plan)
        try:
            with ex.batch():
                jobs = [ex.submit(TrainJob(r, str(store.root), spec.plugins, spec.callbacks, force=r.run_id in forced))
                        for r in plan.runs]
        except Exception as err:  # noqa: BLE001 - sbatch refused: report, keep what went through
            entry["state"] = "failed"
            entry["error"] = f"{type(err).__name__}: {err}"
            journal.save()
            raise SlurmError(f"submitting array {plan.name} failed: {err}") from err
        if pause:
            say(f"submitted {plan.name} as job {jobs[0].job_id.split('_')[0]} (held); pausing {pause:g} s")
            time.sleep(pause)
        entry.update(state="held", job_id=jobs[0].job_id.split("_")[0], job_ids=[j.job_id for j in jobs])
        journal.save()
        record_jobs(store, entry)
        cluster.release(entry["job_id"])
        entry["state"] = "released"
        journal.save()
        say(f"submitted {plan.name}: job {entry['job_id']}, {_n(len(plan.runs), 'run')}, --array={plan.array_spec}")
    say(f"logs in {store.slurm_dir()}/; follow with `{status_command(spec, store)}`")
    return plans
