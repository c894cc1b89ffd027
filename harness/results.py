"""The results store: one JSON document per finished run, written atomically.

Layout under the store's root (default ``results/<study>/``)::

    runs/<run_id>.json       the result of a finished run (config, metrics, curve, provenance)
    failed/<run_id>.json     the last failure of a run that did not finish (never a result)
    work/<run_id>/           checkpoint.pt, model.pt, curve.csv, .lock of the run (:class:`RunFiles`)
    work/<run_id>.next/      the same files while ``--force`` retrains the run, and its result.json
    jobs/<run_id>.json       Slurm job ids a launch recorded for the run
    work/<run_id>/attempts.jsonl   one line per start/requeue/end of the run's Slurm jobs
    launches/                the launch journal (one file per launch) and the launch lock
    slurm/                   submitit's task pickles and the jobs' stdout/stderr
    quarantine/              corrupt files moved aside by ``run --repair``
    external/<id>.json       scores of a model trained elsewhere (``gmgbench import-dlib``)

Every path of this layout is a method of :class:`ResultsStore` (the files inside one run's
folder, of :class:`RunFiles`, which training uses on any folder it is given); no other module
joins one by hand (``tests/harness/test_results.py`` greps for the file names).

A result is written by ``os.replace`` of a temporary file in the same folder, so readers
see either nothing or the whole document, and concurrent jobs never corrupt each other
(each writes only its own run's files). A result already present is never overwritten
unless the caller says ``overwrite=True`` (``--force``).
"""
from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from gmgbench.harness.errors import UserError
# Re-exported: the store's writers are the one atomic writer of harness/fileio.py.
from gmgbench.harness.fileio import DiskFull, NotWritable, atomic_write_json, atomic_write_text, file_lock, load_json

log = logging.getLogger(__name__)

__all__ = ["ResultsStore", "RunFiles", "atomic_write_text", "atomic_write_json", "provenance", "ResultExists", "StoreError"]

SCHEMA_VERSION = 1
REPAIR_HINT = "`gmgbench run STUDY --repair` moves it aside (into quarantine/) and reruns the run"


class ResultExists(UserError, FileExistsError):
    """A result is there already; it is replaced only when asked (``--force``)."""


class StoreError(UserError, ValueError):
    """A file of a results store is corrupt, incomplete or unsafe; the message names it and what to do."""


_PACKAGES = ("gmgbench", "torch", "numpy", "scipy", "scikit-learn", "jax", "ott-jax", "pandas", "submitit")


def _git_commit() -> str:
    """The commit of gmgbench's own code, ``-dirty`` with uncommitted changes; where there is
    none, ``unknown (why)``: a release built from an installed package says so, and its
    version is under ``packages``."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError) as err:
        return f"unknown (git could not run: {type(err).__name__})"
    commit = out.stdout.strip()
    if not commit:
        return "unknown (gmgbench runs from an installed package, not a git checkout; see packages.gmgbench)"
    return commit + ("-dirty" if dirty.stdout.strip() else "")


# The commit of the code this process runs: read once, when the process loads it. Read at
# write time instead, a long-lived worker recorded whatever HEAD was when its run finished,
# although its code was loaded (and frozen) when it started.
_CODE_COMMIT = _git_commit()


def slurm_job_id() -> str | None:
    """This process's Slurm job as ``squeue``, ``sacct`` and ``gmgbench status`` name it:
    ``<array job>_<task>`` for an array task (its own ``SLURM_JOB_ID`` is another number)."""
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        return f"{array}_{os.environ.get('SLURM_ARRAY_TASK_ID', '0')}"
    return os.environ.get("SLURM_JOB_ID")


def provenance() -> dict[str, Any]:
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {
        "git_commit": _CODE_COMMIT,
        "packages": versions,
        "python": platform.python_version(),
        "hostname": platform.node(),
        "slurm_job_id": slurm_job_id(),
    }


class RunFiles:
    """The files of one run's folder: ``work/<id>/``, or ``work/<id>.next/`` while ``--force``
    retrains the run beside it (training and tests also use a folder of their own)."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @property
    def checkpoint(self) -> Path:
        """Everything training resumes from (harness/checkpoints.py)."""
        return self.folder / "checkpoint.pt"

    @property
    def model(self) -> Path:
        """The trained model and its run, written when training ends (harness/checkpoints.py)."""
        return self.folder / "model.pt"

    @property
    def curve(self) -> Path:
        """Every logged point of the training curve (the result keeps a downsampled one)."""
        return self.folder / "curve.csv"

    @property
    def lock(self) -> Path:
        """Held by the process that trains the run or swaps its ``--force`` result in."""
        return self.folder / ".lock"

    @property
    def swap_result(self) -> Path:
        """In ``work/<id>.next/`` only: the retrained result; writing it commits the swap."""
        return self.folder / "result.json"


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        # run id -> ((inode, mtime_ns, size), state, reason, code record): a result is parsed
        # once per change, however often status and run ask whether it is done.
        self._states: dict[str, tuple[tuple[int, ...], str, str, dict[str, Any]]] = {}

    # -- paths ---------------------------------------------------------------------------
    def result_path(self, run_id: str) -> Path:
        return self.runs_dir() / f"{run_id}.json"

    def failure_path(self, run_id: str) -> Path:
        return self.root / "failed" / f"{run_id}.json"

    def workdir(self, run_id: str) -> Path:
        return self.root / "work" / run_id

    def run_files(self, run_id: str, *, next: bool = False) -> RunFiles:
        """The files of the run's folder; ``next``: of the folder ``--force`` retrains it in."""
        return RunFiles(self.next_workdir(run_id) if next else self.workdir(run_id))

    def checkpoint_path(self, run_id: str, *, next: bool = False) -> Path:
        return self.run_files(run_id, next=next).checkpoint

    def model_path(self, run_id: str) -> Path:
        return self.run_files(run_id).model

    def jobs_path(self, run_id: str) -> Path:
        return self.root / "jobs" / f"{run_id}.json"

    def next_workdir(self, run_id: str) -> Path:
        """Where ``--force`` retrains a run, beside the old one (swapped in when complete)."""
        return self.root / "work" / f"{run_id}.next"

    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    def runs_dir(self) -> Path:
        return self.root / "runs"

    def external_dir(self) -> Path:
        """Scores of models trained elsewhere (``gmgbench import-dlib``), one file each."""
        return self.root / "external"

    def external_path(self, external_id: str) -> Path:
        """The scores of a model trained elsewhere (a spec's ``external:`` entry)."""
        return self.external_dir() / f"{external_id}.json"

    def attempts_path(self, run_id: str) -> Path:
        return self.workdir(run_id) / "attempts.jsonl"

    def launches_dir(self) -> Path:
        return self.root / "launches"

    def launch_lock_path(self) -> Path:
        """Held by the one launcher that may submit to this store at a time."""
        return self.launches_dir() / ".lock"

    def slurm_dir(self) -> Path:
        """Absolute: submitit and the jobs on other nodes read it."""
        return self.root.resolve() / "slurm"

    # -- results -------------------------------------------------------------------------
    def has_result(self, run_id: str) -> bool:
        """Whether a complete result is stored (a corrupt or incomplete file is not one)."""
        return self.result_state(run_id)[0] == "done"

    def result_state(self, run_id: str) -> tuple[str, str]:
        """``("done", "")``, ``("absent", "")`` or ``("corrupt", one-line reason naming the file)``."""
        return self._state(run_id)[1:3]

    def code_record(self, run_id: str) -> dict[str, Any]:
        """The method code a done result records (``method_code`` / ``method_source``), else ``{}``."""
        return self._state(run_id)[3]

    def _state(self, run_id: str) -> tuple[tuple[int, ...], str, str, dict[str, Any]]:
        path = self.result_path(run_id)
        try:
            st = path.stat()
        except OSError:
            return (), "absent", "", {}
        key = (st.st_ino, st.st_mtime_ns, st.st_size)  # a rewrite is a new inode (os.replace)
        hit = self._states.get(run_id)
        if hit is not None and hit[0] == key:
            return hit
        try:
            doc = check_result(path, _read_json(path), run_id)
            entry = (key, "done", "", {k: doc[k] for k in ("method_code", "method_source") if k in doc})
        except StoreError as err:
            entry = (key, "corrupt", str(err), {})
        self._states[run_id] = entry
        return entry

    def failure_state(self, run_id: str) -> tuple[str, str]:
        """Like :meth:`result_state`, for ``failed/<id>.json`` (``"failed"`` when readable)."""
        path = self.failure_path(run_id)
        if not path.is_file():
            return "absent", ""
        try:
            doc = _read_json(path)
        except StoreError as err:
            return "corrupt", str(err)
        if not isinstance(doc, dict):
            return "corrupt", f"{path}: not a failure record (a JSON {type(doc).__name__}); {REPAIR_HINT}"
        return "failed", ""

    def quarantine(self, path: Path) -> Path:
        """Move a corrupt file of this store aside to ``quarantine/<its path>.<UTC time>``; never deletes."""
        rel = Path(path).resolve().relative_to(self.root.resolve())
        dest = self.quarantine_dir() / rel.parent / f"{rel.name}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
        n = 1
        while dest.exists():
            dest = dest.with_name(f"{dest.name.rsplit('~', 1)[0]}~{n}")
            n += 1
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, dest)
        return dest

    def write_result(self, run_id: str, result: dict[str, Any], overwrite: bool = False) -> Path:
        path = self.result_path(run_id)
        if path.exists() and not overwrite:
            raise ResultExists(f"{path} already exists; rerun with --force to replace it")
        atomic_write_json(path, {"schema": SCHEMA_VERSION, "run_id": run_id, "status": "done", **result})
        self.failure_path(run_id).unlink(missing_ok=True)
        return path

    def read_result(self, run_id: str) -> dict[str, Any]:
        """The stored result; a corrupt or incomplete one raises :class:`StoreError` naming the file."""
        path = self.result_path(run_id)
        return check_result(path, _read_json(path), run_id)

    def iter_results(self) -> Iterator[dict[str, Any]]:
        """Every stored result, sorted by run id; a corrupt file raises naming it."""
        for path in sorted(self.runs_dir().glob("*.json")):
            yield check_result(path, _read_json(path), path.stem)

    # -- --force: retrain beside the old run, swap in when complete ----------------------
    def run_lock_path(self, run_id: str) -> Path:
        """The lock a process holds while it trains the run or swaps its ``--force`` result in."""
        return self.run_files(run_id).lock

    def commit_next(self, run_id: str, result: dict[str, Any]) -> Path:
        """Replace the run's files and result by the complete retrained ones in :meth:`next_workdir`.

        Writing ``<next>/result.json`` is the commit point: before it the old run is intact;
        after it :meth:`finish_swap` (rerun by any later ``gmgbench run``) completes the swap.
        The caller holds the run's lock (it trained the run).
        """
        atomic_write_json(self.run_files(run_id, next=True).swap_result, {"schema": SCHEMA_VERSION, **result})
        self.finish_swap(run_id, locked=True)
        return self.result_path(run_id)

    def finish_swap(self, run_id: str, *, locked: bool = False) -> bool:
        """Finish a committed ``--force`` swap that was interrupted; idempotent. True if one was done.

        Takes the run's lock (:meth:`run_lock_path`) unless the caller holds it
        (``locked=True``); when another process holds it, that process is training or
        swapping the run and nothing is done here. The new result is checked before anything
        is replaced: one that is not a complete result of this run (``{}``, truncated, another
        run's) is never swapped in; its whole ``work/<id>.next/`` goes to ``quarantine/``
        (named in a warning) and the old run stays as it was.
        """
        if not self.run_files(run_id, next=True).swap_result.is_file():
            return False
        if locked:
            return self._finish_swap(run_id)
        with file_lock(self.run_lock_path(run_id)) as held:
            return held and self._finish_swap(run_id)

    def _finish_swap(self, run_id: str) -> bool:
        files = self.run_files(run_id, next=True)
        nxt, doc = files.folder, files.swap_result
        if not doc.is_file():  # another process finished it while we waited for nothing
            return False
        try:
            result = check_swap(doc, _read_json(doc), run_id)
        except StoreError as err:
            moved = self.quarantine(nxt)
            log.warning("%s; the retrained run was not swapped in (the old one is kept) and %s was moved to %s",
                        str(err).split("; ")[0], nxt, moved)
            return False
        work = self.workdir(run_id)
        work.mkdir(parents=True, exist_ok=True)
        for p in sorted(nxt.iterdir()):
            if p not in (files.swap_result, files.lock) and p.is_file():
                os.replace(p, work / p.name)  # model.pt, checkpoint.pt, curve.csv: each atomically
        result.pop("schema", None)
        self.write_result(run_id, result, overwrite=True)
        shutil.rmtree(nxt, ignore_errors=True)
        return True

    # -- failures ------------------------------------------------------------------------
    def write_failure(self, run_id: str, info: dict[str, Any]) -> bool:
        """Record why the run failed; False when the disk is full or the folder read-only: the
        failure that is being recorded (often that very disk) is what the caller reports."""
        try:
            atomic_write_json(self.failure_path(run_id), {"time": time.time(), **info})
        except (DiskFull, NotWritable) as err:
            log.warning("no failure record for run %s: %s", run_id, err)
            return False
        return True

    def read_failure(self, run_id: str) -> dict[str, Any] | None:
        path = self.failure_path(run_id)
        if not path.is_file():
            return None
        doc = _read_json(path)
        if not isinstance(doc, dict):
            raise StoreError(f"{path}: not a failure record (a JSON {type(doc).__name__}); {REPAIR_HINT}")
        return doc

    def clear_failure(self, run_id: str) -> None:
        self.failure_path(run_id).unlink(missing_ok=True)

    # -- Slurm bookkeeping ---------------------------------------------------------------
    def record_job(self, run_id: str, job: dict[str, Any]) -> None:
        path = self.jobs_path(run_id)
        history = _read_json(path)["jobs"] if path.is_file() else []
        atomic_write_json(path, {"jobs": history + [job]})

    def jobs(self, run_id: str) -> list[dict[str, Any]]:
        path = self.jobs_path(run_id)
        return _read_json(path)["jobs"] if path.is_file() else []


def check_result(path: Path, doc: Any, run_id: str) -> dict[str, Any]:
    """``doc`` if it is a complete result of ``run_id``, else :class:`StoreError` naming ``path``.

    Complete: a JSON object with this run id and ``status: done`` (what :meth:`write_result`
    writes), whose ``metrics``, if any, are ``{metric: {key: number}}``; ``{}``, a
    half-edited file or a score that is not a number (a string, ``null``, ``true``) is not
    a finished run: a leaderboard would otherwise drop that score without a word.
    """
    if not isinstance(doc, dict):
        raise StoreError(f"{path}: not a result (a JSON {type(doc).__name__}); {REPAIR_HINT}")
    missing = [k for k in ("run_id", "status") if k not in doc]
    if missing:
        raise StoreError(f"{path}: incomplete result (no {', '.join(missing)}); {REPAIR_HINT}")
    if doc["run_id"] != run_id:
        raise StoreError(f"{path}: holds the result of run {doc['run_id']!r}, not {run_id!r}; {REPAIR_HINT}")
    if doc["status"] != "done":
        raise StoreError(f"{path}: not a finished result (status {doc['status']!r}); {REPAIR_HINT}")
    _check_metrics(path, doc.get("metrics", {}))
    return doc


def _check_metrics(path: Path, metrics: Any) -> None:
    if not isinstance(metrics, dict):
        raise StoreError(f"{path}: metrics: not a mapping {{metric: {{key: number}}}} "
                         f"(a JSON {type(metrics).__name__}); {REPAIR_HINT}")
    for name, values in metrics.items():
        if not isinstance(values, dict):
            raise StoreError(f"{path}: metrics.{name}: not a mapping {{key: number}} "
                             f"(a JSON {type(values).__name__}); {REPAIR_HINT}")
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise StoreError(f"{path}: metrics.{name}.{key}: {json.dumps(value)[:40]} is not a number; "
                                 f"{REPAIR_HINT}")


def check_swap(path: Path, doc: Any, run_id: str) -> dict[str, Any]:
    """A ``--force`` retraining's ``result.json``: a complete result (:func:`check_result`)
    that also holds what a board and a rerun read (``config``, ``metrics``, ``provenance``),
    as :func:`gmgbench.harness.train.run_and_store` writes it."""
    doc = check_result(path, doc, run_id)
    missing = [k for k in ("config", "metrics", "provenance") if not isinstance(doc.get(k), dict)]
    if missing:
        raise StoreError(f"{path}: incomplete result (no {', '.join(missing)})")
    return doc


def _read_json(path: Path) -> Any:
    return load_json(path, what="store file", error=StoreError, hint=REPAIR_HINT)
