"""Slurm launcher: a study's missing runs as submitit job arrays, and their status.

``gmgbench launch STUDY --profile P`` groups the runs that have no result by resource set
(profile defaults, overridden by the study's ``resources:`` and each method's), cuts each
group into arrays no larger than the cluster's ``MaxArraySize`` and submits every array
task as a :class:`TrainJob` — a Python callable that runs
:func:`harness.executors.execute`, the same unit of work as ``gmgbench run``.

Nothing is lost or run twice when the launcher dies at any point:

1. each array is first written to a launch journal (``<store>/launches/``) under a unique
   Slurm job name, then submitted **held** (``sbatch --hold``);
2. once submitit has placed the task pickles, the journal and every run's
   ``jobs/<run_id>.json`` get the job ids;
3. only then is the array released (``scontrol release``).

A later ``launch`` first finishes what a dead one left: an array Slurm knows under a
journal's name is adopted when its pickles are in place and cancelled (never having run)
otherwise; a held array whose ids were recorded is released. A run whose recorded job is
pending or running in Slurm is never submitted again, and a failed run only with
``--retry-failed``. Preemption and time limits are handled by submitit: the job
requeues itself and training resumes from its last checkpoint (see docs/slurm.md).
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import getpass
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import submitit
import yaml

from harness.executors import is_running_here
from harness.results import ResultsStore, atomic_write_json
from harness.spec import RunSpec, StudySpec

__all__ = [
    "Profile", "ProfileError", "ArrayPlan", "TrainJob", "load_profile", "parse_profile", "plan_arrays",
    "launch", "collect_status", "format_status", "main", "status_main", "cluster_max_array_size",
]

# Test seam: seconds to sleep after an array is submitted and before its job ids are
# recorded (the launcher's most fragile moment); the Slurm tests kill the launcher there.
PAUSE_ENV = "GMGBENCH_LAUNCH_PAUSE_AFTER_SUBMIT"
DEFAULT_MAX_ARRAY_SIZE = 1001  # Slurm's own default, used only when the cluster cannot be asked

# Slurm states in which a job may still run (squeue lists only those, so squeue decides).
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
_HELD_REASONS = {"JobHeldUser", "JobHeldAdmin"}


class ProfileError(ValueError):
    """The cluster profile is invalid; the message names the file and the key."""


class SlurmError(RuntimeError):
    """A Slurm command failed; the message has the command and its stderr."""


# ---------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------
_PROFILE_KEYS = {
    "resources": "submitit AutoExecutor parameters for every run (timeout_min, gpus_per_node, slurm_partition, ...)",
    "array_parallelism": "at most this many tasks of one array run at once (Slurm's --array=...%N)",
    "max_array_size": "largest array to submit: an int, or 'auto' to read MaxArraySize from `scontrol show config`",
    "max_num_timeout": "how many times a run may hit the time limit and be requeued (submitit's max_num_timeout)",
    "python": "python command on the compute nodes (default: this interpreter)",
    "step_seconds": "measured seconds per beta-VAE step (batch 64) on this cluster, for --dry-run's time estimate",
    "description": "free text",
}
# Set by the launcher itself, per array: not for profiles or specs.
_RESERVED = {"name", "slurm_job_name", "slurm_array_parallelism", "slurm_map_count"}


def resource_keys() -> set[str]:
    """Valid resource names: AutoExecutor's generic ones and ``slurm_<sbatch parameter>``."""
    generic = set(submitit.AutoExecutor._valid_parameters())
    specific = {f"slurm_{k}" for k in submitit.SlurmExecutor._valid_parameters()}
    return (generic | specific) - _RESERVED


def check_resources(where: str, key: str, resources: dict[str, Any]) -> None:
    if not isinstance(resources, dict):
        raise ProfileError(f"{where}: {key}: resources are a mapping of submitit parameters, got {type(resources).__name__}")
    valid = resource_keys()
    for name in resources:
        if name in _RESERVED:
            raise ProfileError(f"{where}: {key}.{name}: set by the launcher (use array_parallelism in the profile)")
        if name not in valid:
            import difflib

            close = difflib.get_close_matches(name, sorted(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ProfileError(f"{where}: {key}.{name}: unknown submitit parameter{hint}; valid: {', '.join(sorted(valid))}")


@dataclass(frozen=True)
class Profile:
    """Where and how a cluster runs jobs; see slurm/profiles/template.yaml."""

    resources: dict[str, Any] = field(default_factory=dict)
    array_parallelism: int = 64
    max_array_size: int | None = None  # None: ask the cluster
    max_num_timeout: int = 3
    python: str | None = None
    step_seconds: float | None = None
    path: Path | None = None


def parse_profile(raw: Any, path: Path | None = None) -> Profile:
    where = str(path) if path else "<profile>"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: a profile is a YAML mapping, got {type(raw).__name__}")
    for key in raw:
        if key not in _PROFILE_KEYS:
            raise ProfileError(f"{where}: {key}: unknown key; valid keys: {', '.join(sorted(_PROFILE_KEYS))}")
    resources = dict(raw.get("resources") or {})
    check_resources(where, "resources", resources)

    def positive_int(key: str, default: int) -> int:
        value = raw.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ProfileError(f"{where}: {key}: expected a positive integer, got {value!r}")
        return value

    mas = raw.get("max_array_size", "auto")
    if mas != "auto" and (not isinstance(mas, int) or isinstance(mas, bool) or mas <= 0):
        raise ProfileError(f"{where}: max_array_size: expected a positive integer or 'auto', got {mas!r}")
    python = raw.get("python")
    if python is not None and not isinstance(python, str):
        raise ProfileError(f"{where}: python: expected a command string, got {python!r}")
    step_seconds = raw.get("step_seconds")
    if step_seconds is not None and (not isinstance(step_seconds, (int, float)) or isinstance(step_seconds, bool)
                                     or step_seconds <= 0):
        raise ProfileError(f"{where}: step_seconds: expected a positive number of seconds, got {step_seconds!r}")
    return Profile(resources=resources, array_parallelism=positive_int("array_parallelism", 64),
                   max_array_size=None if mas == "auto" else mas,
                   max_num_timeout=positive_int("max_num_timeout", 3), python=python,
                   step_seconds=None if step_seconds is None else float(step_seconds), path=path)


def load_profile(path: str | Path) -> Profile:
    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"{path}: profile not found (see slurm/profiles/template.yaml)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProfileError(f"{path}: not valid YAML: {err}") from None
    return parse_profile(raw, path)


# ---------------------------------------------------------------------------------------
# Planning: group by resources, chunk to the array size
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArrayPlan:
    """One job array: runs that share a resource set, at most ``max_array_size`` of them."""

    name: str  # the Slurm job name; unique per launch, so a dead launcher's arrays can be found
    resources: dict[str, Any]
    runs: tuple[RunSpec, ...]
    parallelism: int

    @property
    def array_spec(self) -> str:
        n = len(self.runs)
        return f"0-{n - 1}%{min(n, self.parallelism)}"


def run_resources(run: RunSpec, profile: Profile) -> dict[str, Any]:
    """Profile defaults, overridden by the study's and the method's ``resources:``."""
    return {**profile.resources, **run.resources}


def group_runs(runs: Iterable[RunSpec], profile: Profile) -> list[tuple[dict[str, Any], list[RunSpec]]]:
    """Runs grouped by identical resources, in order of first appearance."""
    groups: dict[str, tuple[dict[str, Any], list[RunSpec]]] = {}
    for run in runs:
        res = run_resources(run, profile)
        key = json.dumps(res, sort_keys=True, default=str)
        groups.setdefault(key, (res, []))[1].append(run)
    return list(groups.values())


def chunk(items: list, size: int) -> list[list]:
    if size <= 0:
        raise ValueError(f"chunk size must be > 0, got {size}")
    return [items[i:i + size] for i in range(0, len(items), size)]


def split_parallelism(sizes: list[int], cap: int) -> list[int]:
    """Per-array ``%N`` limits, about proportional to the sizes, that sum to at most ``cap``.

    Slurm's limit applies to one array; splitting it keeps the profile's cap for the whole
    launch. Every array gets at least 1 (so with more arrays than ``cap`` the sum is the
    number of arrays), and none more than its size.
    """
    alloc = [1] * len(sizes)
    spare = cap - len(sizes)
    while spare > 0:
        open_ = [i for i in range(len(sizes)) if alloc[i] < sizes[i]]
        if not open_:
            break
        i = max(open_, key=lambda j: (sizes[j] / alloc[j], -j))
        alloc[i] += 1
        spare -= 1
    return alloc


def plan_arrays(runs: Iterable[RunSpec], profile: Profile, max_array_size: int, prefix: str) -> list[ArrayPlan]:
    """One array per resource set, cut into pieces of at most ``max_array_size`` tasks;
    ``profile.array_parallelism`` is shared out among all of them."""
    parts = []
    for g, (res, group) in enumerate(group_runs(runs, profile)):
        for c, part in enumerate(chunk(group, max_array_size)):
            parts.append((f"{prefix}-r{g}-c{c}", res, tuple(part)))
    caps = split_parallelism([len(p[2]) for p in parts], profile.array_parallelism)
    return [ArrayPlan(name, res, part, cap) for (name, res, part), cap in zip(parts, caps)]


# ---------------------------------------------------------------------------------------
# Slurm queries
# ---------------------------------------------------------------------------------------
def _slurm(cmd: list[str], timeout: float = 60) -> str:
    if shutil.which(cmd[0]) is None:
        raise SlurmError(f"{cmd[0]} not found: is this a Slurm login node? (use --dry-run to plan without Slurm)")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(cmd)}` did not answer in {timeout:.0f} s") from None
    if out.returncode != 0:
        raise SlurmError(f"`{' '.join(cmd)}` failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def cluster_max_array_size() -> int | None:
    """``MaxArraySize`` from ``scontrol show config``; None where Slurm is not reachable."""
    try:
        text = _slurm(["scontrol", "show", "config"])
    except SlurmError:
        return None
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", text, re.M)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class JobState:
    state: str  # Slurm's state word: PENDING, RUNNING, COMPLETED, FAILED, ...
    reason: str = ""
    exit_code: str = ""
    active: bool = False  # listed by squeue: may still run

    @property
    def held(self) -> bool:
        return self.active and self.reason in _HELD_REASONS


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def queue() -> list[dict[str, str]]:
    """This user's jobs in squeue, array tasks one per line."""
    out = _slurm(["squeue", "-h", "-r", "-u", _user(), "-o", "%i|%F|%j|%T|%r"])
    rows = []
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 5:
            rows.append(dict(zip(("job_id", "array_job_id", "name", "state", "reason"), parts)))
    return rows


def job_states(job_ids: Iterable[str]) -> dict[str, JobState]:
    """State of each job id (``123`` or ``123_4``): squeue for live jobs, sacct for ended ones."""
    wanted = set(job_ids)
    states: dict[str, JobState] = {}
    if not wanted:
        return states
    for row in queue():
        if row["job_id"] in wanted:
            states[row["job_id"]] = JobState(row["state"], row["reason"], active=True)
    rest = wanted - set(states)
    if rest:
        bases = sorted({j.split("_")[0] for j in rest})
        for i in range(0, len(bases), 200):  # keep the command line short
            out = _slurm(["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", ",".join(bases[i:i + 200])])
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 3 and parts[0] in rest:
                    # "CANCELLED by 0" -> CANCELLED
                    states[parts[0]] = JobState(parts[1].split()[0] if parts[1] else "UNKNOWN", exit_code=parts[2])
    return states


# ---------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------
class RunFailed(RuntimeError):
    """Raised in the job so that Slurm records FAILED: a failure is never reported as success."""


class TrainJob(submitit.helpers.Checkpointable):
    """One run as a submitit callable; requeued (and resumed) on preemption or time limit."""

    def __init__(self, run: RunSpec, store_root: str, plugins: tuple[str, ...] = ()):
        self.run = run
        self.store_root = str(store_root)
        self.plugins = tuple(plugins)

    def __call__(self) -> dict[str, str]:
        from harness.executors import execute

        for backend in ("PYTORCH", "JAX", "TENSORFLOW", "CUPY"):
            os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        store = ResultsStore(self.store_root)
        run = self.run
        step = _checkpoint_step(store.workdir(run.run_id) / "checkpoint.pt")
        job = os.environ.get("SLURM_ARRAY_JOB_ID")
        job = f"{job}_{os.environ.get('SLURM_ARRAY_TASK_ID')}" if job else os.environ.get("SLURM_JOB_ID", "?")
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        print(f"gmgbench: {run.name} (run {run.run_id}) in job {job}, start {restarts + 1}, "
              + (f"resuming from the checkpoint at step {step}" if step is not None else "from step 0"), flush=True)
        _note_attempt(store, run.run_id, "start", job=job, restarts=restarts, step=step)
        # A run with no thread setting uses the CPUs Slurm gave it, not every core of the node.
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0) if not run.train.num_threads else 0
        try:
            outcome = execute(run, self.store_root, progress=False, plugins=self.plugins, num_threads=threads)
        except SystemExit:
            # submitit requeued this job on preemption/timeout and exits from inside training:
            # the run is interrupted, not failed, and resumes from its checkpoint.
            store.clear_failure(run.run_id)
            _note_attempt(store, run.run_id, "requeued", job=job, restarts=restarts)
            raise
        _note_attempt(store, run.run_id, "end", job=job, restarts=restarts, status=outcome.status)
        if outcome.status == "failed":
            raise RunFailed(f"{run.name}: {outcome.error} (failure record: {store.failure_path(run.run_id)})")
        print(f"gmgbench: {run.name}: {outcome.status}", flush=True)
        return {"run_id": run.run_id, "status": outcome.status}

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        # Training checkpoints itself every train.checkpoint_every steps; the requeued job
        # is this same callable, which resumes from that file.
        return submitit.helpers.DelayedSubmission(self)


def _checkpoint_step(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        import torch

        return int(torch.load(path, map_location="cpu", weights_only=False)["step"])
    except Exception:  # noqa: BLE001 - only a progress hint
        return None


def _note_attempt(store: ResultsStore, run_id: str, event: str, **info: Any) -> None:
    """Append to ``work/<run_id>/attempts.jsonl``: one line per start/requeue/end of a job."""
    path = store.workdir(run_id) / "attempts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"event": event, "time": time.time(), "host": os.uname().nodename, **info}, default=str)
    with open(path, "a") as f:  # one short O_APPEND write: lines of concurrent writers never interleave
        f.write(line + "\n")


def attempts(store: ResultsStore, run_id: str) -> list[dict[str, Any]]:
    path = store.workdir(run_id) / "attempts.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------
# Launch journal
# ---------------------------------------------------------------------------------------
def _journal_dir(store: ResultsStore) -> Path:
    return store.root / "launches"


def _log_folder(store: ResultsStore) -> Path:
    return store.root.resolve() / "slurm"


def log_paths(store: ResultsStore, job_id: str) -> tuple[Path, Path]:
    """(stdout, stderr) of a submitit job, e.g. ``slurm/123_4_0_log.err``."""
    paths = submitit.core.utils.JobPaths(_log_folder(store), job_id=job_id, task_id=0)
    return paths.stdout, paths.stderr


@contextlib.contextmanager
def _launch_lock(store: ResultsStore):
    """One launcher per store at a time; the OS drops the lock when a launcher dies."""
    d = _journal_dir(store)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SlurmError(f"another `gmgbench launch` is running on {store.root}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


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
        path = _journal_dir(store) / f"{time.strftime('%Y%m%d-%H%M%S')}-{token}.json"
        return cls(path, {"study": study, "token": token, "created": time.time(), "arrays": []})

    @classmethod
    def all(cls, store: ResultsStore) -> list["Journal"]:
        return [cls(p, json.loads(p.read_text())) for p in sorted(_journal_dir(store).glob("*.json"))]

    @property
    def arrays(self) -> list[dict[str, Any]]:
        return self.doc["arrays"]

    def save(self) -> None:
        atomic_write_json(self.path, self.doc)


def _record_jobs(store: ResultsStore, entry: dict[str, Any]) -> None:
    """Give every run of a submitted array its job id (skipping runs that have it already)."""
    for i, run_id in enumerate(entry["runs"]):
        job_id = entry["job_ids"][i]
        history = store.jobs(run_id)
        if history and history[-1].get("job_id") == job_id:
            continue
        store.record_job(run_id, {"job_id": job_id, "array": entry["name"], "time": time.time(),
                                  "log": str(log_paths(store, job_id)[1])})


def _release(job_id: str) -> None:
    """Release a held array; one that is gone or no longer held (a user acted) is fine."""
    try:
        _slurm(["scontrol", "release", job_id])
    except SlurmError:
        if any(r["array_job_id"] == job_id and r["reason"] in _HELD_REASONS for r in queue()):
            raise


def recover(store: ResultsStore, say: Callable[[str], None] = print) -> None:
    """Finish or undo what a launcher that died left half-done (see the module docstring)."""
    unfinished = [(j, a) for j in Journal.all(store) for a in j.arrays if a["state"] in ("submitting", "held")]
    if not unfinished:
        return
    live = {row["name"]: row for row in queue()} if any(a["state"] == "submitting" for _, a in unfinished) else {}
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
            pickles = [submitit.core.utils.JobPaths(_log_folder(store), job_id=j).submitted_pickle for j in job_ids]
            if all(p.is_file() for p in pickles):
                entry.update(state="held", job_id=base, job_ids=job_ids)
                journal.save()
                say(f"launch {journal.doc['token']}: adopting array {entry['name']} (job {base})")
            else:  # submitted, but its task pickles were never placed: it must not run
                _slurm(["scancel", base])
                entry.update(state="abandoned", job_id=base)
                journal.save()
                say(f"launch {journal.doc['token']}: cancelled incomplete array {entry['name']} (job {base}); its runs are free again")
                continue
        _record_jobs(store, entry)
        _release(entry["job_id"])
        entry["state"] = "released"
        journal.save()
        say(f"launch {journal.doc['token']}: released array {entry['name']} (job {entry['job_id']})")


# ---------------------------------------------------------------------------------------
# Run states
# ---------------------------------------------------------------------------------------
@dataclass
class RunStatus:
    run: RunSpec
    status: str  # done | running | queued | held | failed | missing
    job_id: str | None = None
    slurm: JobState | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {"run_id": self.run.run_id, "name": self.run.name, "status": self.status, "job_id": self.job_id,
             "note": self.note}
        if self.slurm:
            d["slurm"] = dataclasses.asdict(self.slurm)
        return d


def classify(runs: list[RunSpec], store: ResultsStore, use_slurm: bool = True) -> list[RunStatus]:
    """Each run's state from the store and (for runs with a recorded job) from Slurm."""
    last_job = {}
    for r in runs:
        if not store.has_result(r.run_id):
            jobs = store.jobs(r.run_id)
            if jobs:
                last_job[r.run_id] = jobs[-1]["job_id"]
    states = job_states(last_job.values()) if (use_slurm and last_job) else {}
    out = []
    for r in runs:
        if store.has_result(r.run_id):
            out.append(RunStatus(r, "done"))
            continue
        jid = last_job.get(r.run_id)
        st = states.get(jid) if jid else None
        failure = store.read_failure(r.run_id)
        if st is not None and st.active:
            status = "held" if st.held else "running" if st.state in _RUNNING else "queued"
            out.append(RunStatus(r, status, jid, st))
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


# ---------------------------------------------------------------------------------------
# Launch
# ---------------------------------------------------------------------------------------
def _executor(store: ResultsStore, profile: Profile, plan: ArrayPlan) -> submitit.AutoExecutor:
    kwargs = {"slurm_max_num_timeout": profile.max_num_timeout}
    if profile.python:
        kwargs["slurm_python"] = profile.python
    ex = submitit.AutoExecutor(folder=_log_folder(store), cluster="slurm", **kwargs)
    res = dict(plan.resources)
    extra = {**(res.pop("slurm_additional_parameters", None) or {}), "hold": True}
    ex.update_parameters(name=plan.name, slurm_array_parallelism=plan.parallelism,
                         slurm_additional_parameters=extra, **res)
    return ex


def launch(spec: StudySpec, store: ResultsStore, profile: Profile, *, dry_run: bool = False,
           retry_failed: bool = False, say: Callable[[str], None] = print) -> list[ArrayPlan]:
    """Submit every run of ``spec`` that is not done, queued or running; returns the arrays."""
    runs = spec.runs()
    for r in runs:  # resources come from the spec too: check them before anything is submitted
        check_resources(str(spec.path or "<study spec>"), f"resources (method {r.method})", r.resources)
    store = ResultsStore(store.root.resolve())
    if dry_run:
        return _launch_locked(spec, store, profile, runs, dry_run=True, retry_failed=retry_failed, say=say)
    with _launch_lock(store):
        recover(store, say)
        return _launch_locked(spec, store, profile, runs, dry_run=False, retry_failed=retry_failed, say=say)


def _launch_locked(spec, store, profile, runs, *, dry_run, retry_failed, say) -> list[ArrayPlan]:
    has_slurm = shutil.which("squeue") is not None
    if not dry_run and not has_slurm:
        raise SlurmError("squeue not found: launch from a Slurm login node, or use --dry-run")
    statuses = classify(runs, store, use_slurm=has_slurm)
    if not has_slurm:
        say("(Slurm not reachable here: runs with a recorded job count as not submitted in this plan)")
    counts = {s: sum(x.status == s for x in statuses) for s in ("done", "running", "queued", "held", "failed", "missing")}
    todo = [x.run for x in statuses if x.status == "missing" or (retry_failed and x.status == "failed")]
    say(f"{spec.name}: {len(runs)} runs: {counts['done']} done, {counts['running']} running, "
        f"{counts['queued'] + counts['held']} queued, {counts['failed']} failed, {counts['missing']} not submitted")
    if counts["failed"] and not retry_failed:
        say(f"  {counts['failed']} failed runs are not resubmitted (see `gmgbench status`; --retry-failed resubmits them)")

    cluster_max = cluster_max_array_size() if has_slurm else None
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
    say(f"{'would submit' if dry_run else 'submitting'} {len(todo)} runs as {len(plans)} arrays "
        f"(at most {max_size} tasks each, from {source}; at most {running} running at once)")
    if running > profile.array_parallelism:
        say(f"  warning: {len(plans)} arrays need at least one running task each, more than "
            f"array_parallelism={profile.array_parallelism}")
    if dry_run:
        for plan in plans:
            say(f"array {plan.name}: --array={plan.array_spec}  {json.dumps(plan.resources, sort_keys=True)}")
            for i, r in enumerate(plan.runs):
                say(f"  [{i}] {r.run_id}  {r.name}")
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
                jobs = [ex.submit(TrainJob(r, str(store.root), spec.plugins)) for r in plan.runs]
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
        _record_jobs(store, entry)
        _release(entry["job_id"])
        entry["state"] = "released"
        journal.save()
        say(f"submitted {plan.name}: job {entry['job_id']}, {len(plan.runs)} runs, --array={plan.array_spec}")
    say(f"logs in {_log_folder(store)}/; follow with `gmgbench status {spec.path or spec.name}`")
    return plans


# ---------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------
def _tail(path: Path, lines: int) -> list[str]:
    if not path.is_file():
        return []
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64 * 1024))
        text = f.read().decode(errors="replace")
    return text.splitlines()[-lines:]


def _progress(store: ResultsStore, run: RunSpec) -> str:
    step = _checkpoint_step(store.workdir(run.run_id) / "checkpoint.pt")
    return f"step {step}/{run.train.steps}" if step is not None else "starting"


def collect_status(spec: StudySpec, store: ResultsStore, tail: int = 5) -> dict[str, Any]:
    """The study's state as a JSON-able dict: counts, and per run its job, log and last stderr lines."""
    runs = spec.runs()
    statuses = classify(runs, store, use_slurm=shutil.which("squeue") is not None)
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
    counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "running", "queued", "held", "failed", "missing")}
    return {"study": spec.name, "store": str(store.root), "total": len(rows), "counts": counts, "runs": rows}


def format_status(report: dict[str, Any]) -> str:
    c, n = report["counts"], report["total"]
    pct = 100.0 * c["done"] / n if n else 100.0
    lines = [f"{report['study']}: {c['done']}/{n} done ({pct:.0f}%), {c['running']} running, "
             f"{c['queued'] + c['held']} queued, {c['failed']} failed, {c['missing']} not submitted  [{report['store']}]"]
    for status in ("running", "queued", "held", "failed", "missing"):
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
            elif status == "missing" and r.get("note"):
                lines.append(f"    {r['note']}")
    if c["failed"]:
        lines.append("fix the cause, then `gmgbench launch ... --retry-failed` (a changed hyperparameter is a new run: plain launch)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------
# CLI entry points (called by harness.cli)
# ---------------------------------------------------------------------------------------
def _study_and_store(args, check_methods: bool = True) -> tuple[StudySpec, ResultsStore]:
    from harness.executors import store_for
    from harness.spec import load_spec

    spec = load_spec(args.study, check_methods=check_methods)
    return spec, store_for(spec.name, args.results)


def main(args) -> int:
    try:
        spec, store = _study_and_store(args)
        profile = load_profile(args.profile)
        launch(spec, store, profile, dry_run=args.dry_run, retry_failed=args.retry_failed,
               say=lambda s: print(s, flush=True))
        if args.dry_run:
            from harness import estimate

            todo = [r for r in spec.runs() if not store.has_result(r.run_id)]
            unit = "GPU" if profile.resources.get("gpus_per_node") else "CPU-job"
            print(estimate.describe(todo, store, profile.step_seconds, unit=unit), flush=True)
    except (ProfileError, SlurmError) as err:
        print(f"gmgbench launch: error: {err}", file=sys.stderr)
        return 1
    return 0


def status_main(args) -> int:
    spec, store = _study_and_store(args, check_methods=False)  # status never imports torch
    try:
        report = collect_status(spec, store, tail=getattr(args, "tail", 5))
    except SlurmError as err:
        print(f"gmgbench status: error: {err}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(report, indent=1, default=str))
    else:
        print(format_status(report))
    return 0
