"""The results store: one JSON document per finished run, written atomically.

Layout under the store's root (default ``results/<study>/``)::

    runs/<run_id>.json       the result of a finished run (config, metrics, curve, provenance)
    failed/<run_id>.json     the last failure of a run that did not finish (never a result)
    work/<run_id>/           checkpoint.pt, model.pt, curve.csv, log of the run in progress
    jobs/<run_id>.json       Slurm job ids a launch recorded for the run

A result is written by ``os.replace`` of a temporary file in the same folder, so readers
see either nothing or the whole document, and concurrent jobs never corrupt each other
(each writes only its own run's files). A result already present is never overwritten
unless the caller says ``overwrite=True`` (``--force``).
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from harness.errors import UserError
# Re-exported: the store's writers are the one atomic writer of harness/fileio.py.
from harness.fileio import atomic_write_json, atomic_write_text

__all__ = ["ResultsStore", "atomic_write_text", "atomic_write_json", "provenance", "ResultExists"]

SCHEMA_VERSION = 1


class ResultExists(UserError, FileExistsError):
    """A result is there already; it is replaced only when asked (``--force``)."""


_PACKAGES = ("gmgbench", "torch", "numpy", "scipy", "scikit-learn", "jax", "ott-jax", "pandas", "submitit")


def _git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip()
        return commit + ("-dirty" if dirty.stdout.strip() else "") if commit else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# The commit of the code this process runs: read once, when the process loads it. Read at
# write time instead, a long-lived worker recorded whatever HEAD was when its run finished,
# although its code was loaded (and frozen) when it started.
_CODE_COMMIT = _git_commit()


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
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------
    def result_path(self, run_id: str) -> Path:
        return self.root / "runs" / f"{run_id}.json"

    def failure_path(self, run_id: str) -> Path:
        return self.root / "failed" / f"{run_id}.json"

    def workdir(self, run_id: str) -> Path:
        return self.root / "work" / run_id

    def jobs_path(self, run_id: str) -> Path:
        return self.root / "jobs" / f"{run_id}.json"

    # -- results -------------------------------------------------------------------------
    def has_result(self, run_id: str) -> bool:
        return self.result_path(run_id).is_file()

    def write_result(self, run_id: str, result: dict[str, Any], overwrite: bool = False) -> Path:
        path = self.result_path(run_id)
        if path.exists() and not overwrite:
            raise ResultExists(f"{path} already exists; rerun with --force to replace it")
        atomic_write_json(path, {"schema": SCHEMA_VERSION, **result})
        self.failure_path(run_id).unlink(missing_ok=True)
        return path

    def read_result(self, run_id: str) -> dict[str, Any]:
        return _read_json(self.result_path(run_id))

    def iter_results(self) -> Iterator[dict[str, Any]]:
        """Every stored result, sorted by run id; a corrupt file raises naming it."""
        for path in sorted((self.root / "runs").glob("*.json")):
            yield _read_json(path)

    # -- failures ------------------------------------------------------------------------
    def write_failure(self, run_id: str, info: dict[str, Any]) -> None:
        atomic_write_json(self.failure_path(run_id), {"time": time.time(), **info})

    def read_failure(self, run_id: str) -> dict[str, Any] | None:
        path = self.failure_path(run_id)
        return _read_json(path) if path.is_file() else None

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


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: corrupt JSON ({err}); move the file away and rerun its run") from None
