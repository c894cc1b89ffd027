"""Helpers of the Slurm tests: run the CLI as a separate process, wait for a study."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from gmgbench.harness import status
from gmgbench.harness.slurm import cluster, job, journal
from gmgbench.harness.slurm.launch import PAUSE_ENV
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """``gmgbench ARGS`` in a fresh process, as a user would run it (fire and forget)."""
    return subprocess.run([sys.executable, "-m", "gmgbench.harness.cli", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def status_json(spec_path: Path, results: Path) -> dict:
    res = cli("status", spec_path, "--results", results, "--json", "--tail", "20")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def wait_settled(spec_path: Path, results: Path, timeout: float = 300) -> dict:
    """Poll until no run of the study is queued, held or running; return the last status."""
    spec, store = load_spec(spec_path), ResultsStore(results)
    end = time.monotonic() + timeout
    while True:
        report = status.collect_status(spec, store, tail=20)
        c = report["counts"]
        if c["running"] + c["queued"] + c["held"] == 0:
            return report
        if time.monotonic() > end:
            raise AssertionError(f"study {spec.name} not settled after {timeout:.0f} s:\n{status.format_status(report)}")
        time.sleep(2)


def max_concurrency(store: ResultsStore, run_ids: list[str]) -> int:
    """Most runs that were inside a job at the same moment, from their attempt logs."""
    events = []
    for rid in run_ids:
        for a in job.attempts(store, rid):
            events.append((a["time"], +1 if a["event"] == "start" else -1))
    level = peak = 0
    for _, d in sorted(events, key=lambda e: (e[0], e[1])):  # an end before a start at the same instant
        level += d
        peak = max(peak, level)
    return peak
