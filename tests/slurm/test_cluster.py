"""The launcher against a real Slurm (slurm/local): the five scenarios of docs/slurm.md.

Each test launches with ``gmgbench launch`` in a separate process, as a user does, and
checks the results store, the launcher's records and Slurm's accounting.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import submitit

from gmgbench.harness import checkpoints, status
from gmgbench.harness.slurm import cluster, job, journal
from gmgbench.harness.slurm.launch import PAUSE_ENV
from gmgbench.harness.executors import execute
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from slurm_helpers import REPO, cli, max_concurrency, status_json, wait_settled

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TRAIN = {"steps": 30, "batch_size": 16, "latent_dim": 4, "lr": 0.001, "checkpoint_every": 10, "log_every": 10,
         "num_threads": 1}
MIG = {"metrics": {"mig": {"num_train": 200}}}


def _journal_arrays(results) -> list[dict]:
    return [a for j in journal.Journal.all(ResultsStore(results)) for a in j.arrays]


def test_study_runs_as_capped_arrays_and_builds_leaderboard(slurm_cluster, study, profile):
    spec_path, results = study("arrays", datasets=["dsprites_procedural", "shapes3d_procedural"], seeds=2,
                               train=TRAIN, evaluation=MIG, leaderboard={"selection": "mig.discrete_mig"})
    res = cli("launch", spec_path, "--profile", profile(array_parallelism=2), "--results", results)
    assert res.returncode == 0, res.stdout + res.stderr
    # 8 runs, MaxArraySize 5: two arrays, the cap of 2 shared out between them
    assert "submitting 8 runs as 2 arrays" in res.stdout, res.stdout
    arrays = _journal_arrays(results)
    assert sorted(len(a["runs"]) for a in arrays) == [3, 5]
    assert all(a["state"] == "released" for a in arrays)
    assert sum(int(a["array"].split("%")[1]) for a in arrays) == 2

    report = wait_settled(spec_path, results)
    assert report["counts"]["done"] == 8, status.format_status(report)

    spec, store = load_spec(spec_path), ResultsStore(results)
    runs = spec.runs()
    assert {r.dataset for r in runs} == {"dsprites_procedural", "shapes3d_procedural"}
    for run in runs:
        result = store.read_result(run.run_id)
        assert result["run_id"] == run.run_id and result["training"]["steps"] == 30
        assert math.isfinite(result["metrics"]["mig"]["discrete_mig"])
        assert result["provenance"]["slurm_job_id"]  # it ran inside a Slurm job
        assert len(store.jobs(run.run_id)) == 1
        assert [a["event"] for a in job.attempts(store, run.run_id)] == ["start", "end"]
    # the cap held: never more than 2 runs at once, although the node has 4 CPUs
    assert max_concurrency(store, [r.run_id for r in runs]) <= 2

    from gmgbench.harness import leaderboard

    board = leaderboard.build(spec, store)
    table = board.agg.table
    assert table["done"].sum() == 8 and table["missing"].sum() == 0 and table["failed"].sum() == 0
    for (dataset, setting), rows in table.groupby(["dataset", "setting"]):
        values = [store.read_result(r.run_id)["metrics"]["mig"]["discrete_mig"]
                  for r in runs if r.dataset == dataset and r.setting == setting]
        assert rows["mig.discrete_mig.mean"].iloc[0] == pytest.approx(np.mean(values), rel=1e-12)
    assert "shapes3d_procedural" in board.markdown and "dsprites_procedural" in board.markdown


def _wait_for(cond, timeout: float, what: str):
    end = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return value


def test_preempted_run_resumes_from_checkpoint_to_the_same_result(slurm_cluster, study, profile, tmp_path):
    train = {**TRAIN, "steps": 120}
    spec_path, results = study("preempt", methods=[{"label": "bvae", "objective": "beta_vae", "params": {"beta": 2.0}}],
                               train=train, evaluation=MIG,
                               leaderboard={"selection": "mig.discrete_mig"})
    res = cli("launch", spec_path, "--profile", profile(), "--results", results)
    assert res.returncode == 0, res.stdout + res.stderr
    store = ResultsStore(results)
    (run,) = load_spec(spec_path).runs()
    job_id = store.jobs(run.run_id)[-1]["job_id"]
    ckpt = store.checkpoint_path(run.run_id)
    step = _wait_for(lambda: checkpoints.checkpoint_step(ckpt), 180, "the first checkpoint")
    assert step < train["steps"], "the run finished before it could be preempted; make it longer"

    # What a preemption does: SIGTERM, then submitit's USR2 -> checkpoint() -> scontrol requeue.
    submitit.SlurmJob(folder=results / "slurm", job_id=job_id)._interrupt()
    report = wait_settled(spec_path, results)
    assert report["counts"]["done"] == 1, status.format_status(report)

    events = job.attempts(store, run.run_id)
    assert [e["event"] for e in events] == ["start", "requeued", "start", "end"], events
    assert events[2]["restarts"] >= 1 and events[2]["step"] >= step and events[2]["step"] % 10 == 0
    assert events[2]["job"] == job_id  # requeued, not resubmitted
    log = (results / "slurm" / f"{job_id}_0_log.out").read_text()
    assert f"resuming from the checkpoint at step {events[2]['step']}" in log
    assert store.read_failure(run.run_id) is None  # a preemption is not a failure

    # The same run without interruption, here: bit for bit the same numbers on CPU.
    ref = ResultsStore(tmp_path / "uninterrupted")
    assert execute(run, str(ref.root), progress=False).status == "done"
    got, want = store.read_result(run.run_id), ref.read_result(run.run_id)
    assert got["metrics"] == want["metrics"]
    assert got["training"]["curve"] == want["training"]["curve"]
    assert got["training"]["final"] == want["training"]["final"] and got["training"]["steps"] == 120


def test_failed_run_is_reported_with_its_log_and_only_it_reruns_after_the_fix(slurm_cluster, study, profile):
    good = {"label": "bvae", "objective": "beta_vae", "params": {"beta": [1.0, 2.0]}}
    bad = {"label": "bvae_fast", "objective": "beta_vae", "params": {"beta": 1.0}, "train": {"lr": 1.0e10}}
    spec_path, results = study("failing", methods=[good, bad])
    prof = profile()
    assert cli("launch", spec_path, "--profile", prof, "--results", results).returncode == 0
    wait_settled(spec_path, results)

    end = time.monotonic() + 60  # sacct may lag squeue by a moment
    while (report := status_json(spec_path, results)) and time.monotonic() < end:
        if all(r.get("slurm", {}).get("state") == "FAILED" for r in report["runs"] if r["status"] == "failed"):
            break
        time.sleep(1)
    assert report["counts"] == {"done": 2, "running": 0, "queued": 0, "held": 0, "failed": 1, "missing": 0,
                                "corrupt": 0, "stale": 0}
    (failed,) = [r for r in report["runs"] if r["status"] == "failed"]
    assert failed["name"].startswith("bvae_fast")
    assert "FloatingPointError" in failed["note"] and "learning rate" in failed["note"]
    assert failed["log"].endswith(f"{failed['job_id']}_0_log.err") and os.path.isfile(failed["log"])
    assert any("FloatingPointError" in line or "RunFailed" in line for line in failed["stderr_tail"])
    assert failed["slurm"]["state"] == "FAILED"  # a failure is never reported as success
    text = cli("status", spec_path, "--results", results).stdout
    assert "failed:" in text and failed["log"] in text and "| " in text

    # Without the fix, a relaunch leaves the failed run alone (no --retry-failed).
    again = cli("launch", spec_path, "--profile", prof, "--results", results)
    assert "nothing to submit" in again.stdout and "1 failed run not resubmitted" in again.stdout
    # --retry-failed resubmits exactly that run (still broken, so it fails again)
    retry = cli("launch", spec_path, "--profile", prof, "--results", results, "--retry-failed")
    assert "submitting 1 run as 1 array" in retry.stdout, retry.stdout
    wait_settled(spec_path, results)
    bad_id = failed["run_id"]
    assert len(ResultsStore(results).jobs(bad_id)) == 2
    assert status_json(spec_path, results)["counts"]["failed"] == 1

    # Fix the learning rate: a new run, the only one submitted.
    fixed = {**bad, "train": {"lr": 0.002}}
    spec_path, _ = study("failing", methods=[good, fixed])
    res = cli("launch", spec_path, "--profile", prof, "--results", results)
    assert "submitting 1 run as 1 array" in res.stdout, res.stdout
    report = wait_settled(spec_path, results)
    assert report["counts"]["done"] == 3
    store = ResultsStore(results)
    assert [len(store.jobs(r.run_id)) for r in load_spec(spec_path).runs()] == [1, 1, 1]


def test_killed_launcher_then_relaunch_neither_loses_nor_duplicates(slurm_cluster, study, profile):
    spec_path, results = study("killed", methods=[{"label": "bvae", "objective": "beta_vae",
                                                   "params": {"beta": [1.0, 2.0, 3.0]}}], seeds=2)
    prof = profile(max_array_size=2, array_parallelism=2)
    proc = subprocess.Popen([sys.executable, "-m", "gmgbench.harness.cli", "launch", str(spec_path), "--profile", str(prof),
                             "--results", str(results)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, PAUSE_ENV: "120"})
    seen = []
    guard = threading.Timer(180, proc.kill)  # never hang the suite on a launcher that stalls
    guard.start()
    try:
        for line in proc.stdout:  # submitted, held, job ids not yet recorded: the worst moment
            seen.append(line)
            if "pausing" in line:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        guard.cancel()
    assert any("pausing" in s for s in seen), "".join(seen)
    store = ResultsStore(results)
    runs = load_spec(spec_path).runs()
    assert not any(store.jobs(r.run_id) for r in runs)  # nothing recorded yet
    (entry,) = _journal_arrays(results)
    assert entry["state"] == "submitting"
    held = [q for q in cluster.queue() if q["name"] == entry["name"]]
    assert held and all(q["reason"] == "JobHeldUser" for q in held)  # it cannot run meanwhile

    res = cli("launch", spec_path, "--profile", prof, "--results", results)
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"adopting array {entry['name']}" in res.stdout
    assert "submitting 4 runs as 2 arrays" in res.stdout, res.stdout
    report = wait_settled(spec_path, results)
    assert report["counts"]["done"] == 6, status.format_status(report)
    for r in runs:
        assert len(store.jobs(r.run_id)) == 1
        assert [a["event"] for a in job.attempts(store, r.run_id)] == ["start", "end"]
    assert "nothing to submit" in cli("launch", spec_path, "--profile", prof, "--results", results).stdout


def test_arrays_are_chunked_to_the_clusters_max_array_size(slurm_cluster, study, profile):
    assert cluster.cluster_max_array_size() == slurm_cluster["max_array_size"] == 5
    # the limit is real: Slurm refuses a larger array
    refused = subprocess.run(["sbatch", "--hold", "--array=0-5", "--wrap=true"], capture_output=True, text=True)
    assert refused.returncode != 0, refused.stdout

    spec_path, results = study("chunks", methods=[{"label": "bvae", "objective": "beta_vae",
                                                   "params": {"beta": [1.0, 2.0, 3.0]}}], seeds=2,
                               train={**TRAIN, "steps": 10})
    dry = cli("launch", spec_path, "--profile", profile(max_array_size=2), "--results", results, "--dry-run")
    assert "would submit 6 runs as 3 arrays" in dry.stdout and "from the profile" in dry.stdout, dry.stdout

    res = cli("launch", spec_path, "--profile", profile(array_parallelism=4), "--results", results)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "6 runs as 2 arrays (at most 5 tasks each, from the cluster's MaxArraySize" in res.stdout, res.stdout
    assert sorted(len(a["runs"]) for a in _journal_arrays(results)) == [1, 5]
    report = wait_settled(spec_path, results)
    assert report["counts"]["done"] == 6
    store = ResultsStore(results)
    tasks = [store.jobs(r.run_id)[0]["job_id"] for r in load_spec(spec_path).runs()]
    assert all(int(t.split("_")[1]) < 5 for t in tasks if "_" in t)
