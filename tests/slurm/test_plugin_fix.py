"""A plugin fixed mid-study, finished with `launch` (issue 27): the array task itself
(TrainJob, what Slurm runs) called here, and the launch plan and status advice around it."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gmgbench.harness import status
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster, job
from gmgbench.harness.slurm.launch import launch
from gmgbench.harness.slurm.profile import Profile
from gmgbench.harness.spec import load_spec
from gmgbench.methods import registry

REPO = Path(__file__).resolve().parents[2]
BUGGY = """
    from gmgbench.methods.base import Regulariser
    from gmgbench.methods.registry import register
    from dataclasses import dataclass

    @register
    class Bug(Regulariser):
        name = "bug"

        @dataclass(frozen=True)
        class Config(Regulariser.Config):
            explode: bool = False

        def __call__(self, out):
            if self.cfg.explode and out.step >= 2:  # after the checkpoint at step 2
                raise ValueError("the bug")
            return out.mu.pow(2).mean(), {}
    """
FIXED = BUGGY.replace('raise ValueError("the bug")', 'pass  # fixed')


@pytest.fixture
def study(tmp_path, monkeypatch):
    for var in ("SLURM_RESTART_COUNT", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cluster.shutil, "which", lambda _: None)  # no Slurm here: plans and the task only
    (tmp_path / "bug.py").write_text(textwrap.dedent(BUGGY))
    spec_path = tmp_path / "fix.yaml"
    spec_path.write_text(textwrap.dedent("""
        name: fix
        plugins: [bug.py]
        datasets: [dsprites_procedural]
        methods:
          - {label: ok, objective: beta_vae, regularisers: [{name: bug, params: {weight: 0.1}}]}
          - {label: broken, objective: beta_vae, regularisers: [{name: bug, params: {weight: 0.1, explode: true}}]}
        train: {steps: 4, batch_size: 8, latent_dim: 4, checkpoint_every: 2, log_every: 1, num_threads: 1}
        evaluation: {metrics: {}}
        """))
    with registry.isolated():  # each test loads its own bug.py
        yield load_spec(spec_path), ResultsStore(tmp_path / "store"), tmp_path


def _in_fresh_process(task: job.TrainJob, tmp, env=None) -> subprocess.CompletedProcess:
    """Call the task as its Slurm job does: unpickled in a new Python process, which loads
    the plugin file as it is now (this process keeps the module it imported first)."""
    path = tmp / "task.pkl"
    path.write_bytes(pickle.dumps(task))
    code = "import pickle, sys; print(pickle.load(open(sys.argv[1], 'rb'))())"
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _plan(spec, store, **flags) -> str:
    lines: list[str] = []
    launch(spec, store, Profile(), dry_run=True, say=lines.append, **flags)
    return "\n".join(lines)


def test_a_refused_checkpoint_fails_the_job_before_any_resuming_line(study):
    spec, store, tmp = study
    ok, broken = spec.runs()
    assert job.TrainJob(ok, str(store.root), spec.plugins)()["status"] == "done"
    with pytest.raises(job.RunFailed, match="ValueError: the bug"):
        job.TrainJob(broken, str(store.root), spec.plugins)()
    (tmp / "bug.py").write_text(textwrap.dedent(FIXED))
    proc = _in_fresh_process(job.TrainJob(broken, str(store.root), spec.plugins), tmp)
    assert proc.returncode != 0, proc.stdout  # Slurm records FAILED, not COMPLETED
    assert "RunFailed" in proc.stderr and "StaleCheckpoint: " in proc.stderr
    assert "written by other method code" in proc.stderr and "--retry-failed` starts the run over" in proc.stderr
    assert "resuming from the checkpoint" not in proc.stdout + proc.stderr
    assert store.read_failure(broken.run_id)["error"].startswith("StaleCheckpoint: ")
    assert job.attempts(store, broken.run_id)[-1] == {**job.attempts(store, broken.run_id)[-1], "event": "end",
                                                       "status": "failed"}


def test_a_plugin_fixed_mid_study_is_finished_with_launch(study):
    """The journey: a buggy plugin fails one run after its checkpoint and finishes another;
    after the fix, status names launch commands that work, --retry-failed starts the failed
    run over instead of refusing it again, and --rerun-stale replaces the stale result."""
    spec, store, tmp = study
    ok, broken = spec.runs()
    job.TrainJob(ok, str(store.root), spec.plugins)()
    with pytest.raises(job.RunFailed):
        job.TrainJob(broken, str(store.root), spec.plugins)()
    (tmp / "bug.py").write_text(textwrap.dedent(FIXED))

    text = status.format_status(status.collect_status(spec, store))
    assert f"gmgbench launch {spec.path} --profile PROFILE --results {store.root} --retry-failed" in text
    assert f"gmgbench launch {spec.path} --profile PROFILE --results {store.root} --rerun-stale" in text
    plan = _plan(spec, store, retry_failed=True)
    assert "1 done run stale" in plan and "--rerun-stale reruns them" in plan
    assert "would submit 1 run as" in plan and "1 run to start over beside the stored files" in plan
    plan = _plan(spec, store, retry_failed=True, rerun_stale=True)
    assert "would submit 2 runs" in plan and "2 runs to start over" in plan
    assert "would submit 2 runs" in _plan(spec, store, force=True)

    old = store.read_result(ok.run_id)
    for run in (ok, broken):  # what the submitted tasks run: TrainJob(..., force=True)
        proc = _in_fresh_process(job.TrainJob(run, str(store.root), spec.plugins, force=True), tmp)
        assert proc.returncode == 0, proc.stderr
        assert "rerun beside the stored run (--force), from step 0" in proc.stdout and "'done'" in proc.stdout
    report = status.collect_status(spec, store)
    assert report["counts"]["done"] == 2 and report["counts"]["stale"] == 0 and report["counts"]["failed"] == 0
    assert "launch" not in status.format_status(report)  # nothing left to advise
    assert store.read_result(ok.run_id)["provenance"]["started"] > old["provenance"]["started"]
    assert "nothing to submit" in _plan(spec, store, retry_failed=True, rerun_stale=True)


def test_a_requeued_forced_job_resumes_its_own_retraining(study, monkeypatch, capsys):
    """A --force task preempted after its checkpoint resumes in work/<id>.next/, not from step 0."""
    from gmgbench.harness.train import Interrupted, run_and_store

    spec, store, tmp = study
    ok, _ = spec.runs()
    job.TrainJob(ok, str(store.root), spec.plugins)()
    with pytest.raises(Interrupted):
        run_and_store(ok, store, force=True, progress=False, stop_after=2)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    capsys.readouterr()
    assert job.TrainJob(ok, str(store.root), spec.plugins, force=True)()["status"] == "done"
    assert "rerun beside the stored run (--force), resuming from the checkpoint at step 2" in capsys.readouterr().out
    assert not store.next_workdir(ok.run_id).exists()


def test_a_done_run_being_rerun_shows_as_running_and_is_not_submitted_again(tmp_path, monkeypatch):
    """A job recorded after the result (launch --force / --rerun-stale) is followed in status,
    and launch leaves the run alone while that job is in Slurm."""
    import time

    from gmgbench.harness.slurm.cluster import JobState
    from gmgbench.harness.spec import parse_spec

    spec = parse_spec({"name": "rr", "datasets": ["dsprites_procedural"], "seeds": 1,
                       "methods": [{"label": "b", "objective": "beta_vae", "params": {"beta": [1.0, 2.0]}}],
                       "train": {"steps": 4, "batch_size": 8, "num_threads": 1}, "evaluation": {"metrics": {}}})
    first, second = spec.runs()
    store = ResultsStore(tmp_path)
    for run in (first, second):
        store.write_result(run.run_id, {"run_id": run.run_id, "status": "done"})
    store.record_job(second.run_id, {"job_id": "old"})  # the job that made the result
    time.sleep(0.01)
    os.utime(store.result_path(second.run_id))  # the result is newer: no rerun
    store.record_job(first.run_id, {"job_id": "7_0"})
    os.utime(store.result_path(first.run_id), (1, 1))  # the rerun's job is newer than the result
    asked: list[set] = []
    monkeypatch.setattr(cluster, "job_states",
                        lambda ids: asked.append(set(ids)) or {"7_0": JobState("RUNNING", active=True)})
    got = {s.run.run_id: s for s in status.classify(spec.runs(), store)}
    assert asked == [{"7_0"}]  # only the possible rerun is asked about
    assert got[first.run_id].status == "running" and "rerun of a done run" in got[first.run_id].note
    assert got[second.run_id].status == "done"
    # Its progress is the rerun's (work/<id>.next/), not the old run's finished checkpoint.
    import torch

    from gmgbench.harness.checkpoints import _REQUIRED

    def checkpoint(step: int) -> dict:  # every key a real checkpoint has (an incomplete one reads as none)
        return {**dict.fromkeys(_REQUIRED["checkpoint"], 0), "step": step}

    store.workdir(first.run_id).mkdir(parents=True)
    torch.save(checkpoint(4), store.workdir(first.run_id) / "checkpoint.pt")
    store.next_workdir(first.run_id).mkdir(parents=True)
    monkeypatch.setattr(cluster, "available", lambda: True)
    row = next(r for r in status.collect_status(spec, store)["runs"] if r["run_id"] == first.run_id)
    assert row["progress"] == "starting"
    torch.save(checkpoint(2), store.next_workdir(first.run_id) / "checkpoint.pt")
    row = next(r for r in status.collect_status(spec, store)["runs"] if r["run_id"] == first.run_id)
    assert row["progress"] == "step 2/4"
    monkeypatch.setattr(cluster, "cluster_max_array_size", lambda: None)
    lines: list[str] = []
    launch(spec, store, Profile(), dry_run=True, force=True, say=lines.append)
    assert "would submit 1 run as 1 array" in "\n".join(lines)  # the rerunning one is not submitted again
