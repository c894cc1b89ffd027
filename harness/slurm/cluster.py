"""The cluster's own commands: ``squeue``/``sacct`` for job states, ``scontrol`` for the
configuration and releasing held arrays, ``scancel``. Every call goes through
:func:`command`, the one place (and test seam) that runs a Slurm binary."""
from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Iterable

from gmgbench.harness.errors import UserError

__all__ = ["SlurmError", "JobState", "command", "available", "queue", "job_states", "release",
           "cluster_max_array_size", "RUNNING", "HELD_REASONS"]

# Slurm states in which a job may still run (squeue lists only those, so squeue decides).
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
HELD_REASONS = {"JobHeldUser", "JobHeldAdmin"}


class SlurmError(UserError, RuntimeError):
    """A Slurm command failed; the message has the command and its stderr."""


def available() -> bool:
    """Whether this machine can talk to Slurm (a login node has squeue)."""
    return shutil.which("squeue") is not None


def command(cmd: list[str], timeout: float = 60) -> str:
    """Run a Slurm command and return its stdout; any failure is a :class:`SlurmError`."""
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
        text = command(["scontrol", "show", "config"])
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
        return self.active and self.reason in HELD_REASONS


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def queue() -> list[dict[str, str]]:
    """This user's jobs in squeue, array tasks one per line."""
    out = command(["squeue", "-h", "-r", "-u", _user(), "-o", "%i|%F|%j|%T|%r"])
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
            out = command(["sacct", "-X", "-n", "-P", "-o", "JobID,State,ExitCode", "-j", ",".join(bases[i:i + 200])])
            for line in out.splitlines():
                parts = line.strip().split("|")
                if len(parts) == 3 and parts[0] in rest:
                    # "CANCELLED by 0" -> CANCELLED
                    states[parts[0]] = JobState(parts[1].split()[0] if parts[1] else "UNKNOWN", exit_code=parts[2])
    return states


def release(job_id: str) -> None:
    """Release a held array; one that is gone or no longer held (a user acted) is fine."""
    try:
        command(["scontrol", "release", job_id])
    except SlurmError:
        if any(r["array_job_id"] == job_id and r["reason"] in HELD_REASONS for r in queue()):
            raise
