"""Issue 15, item 7, the Slurm side, without Slurm: the status hint names the store, every
requeue leaves a line in attempts.jsonl, provenance names an array task as sacct does, and a
run in an array a dead launcher left held is not "missing"."""
from __future__ import annotations

from pathlib import Path

import pytest

from gmgbench.harness import status
from gmgbench.harness.results import ResultsStore, provenance
from gmgbench.harness.slurm import cluster, job, journal
from gmgbench.harness.slurm.launch import status_command
from gmgbench.harness.spec import parse_spec


def _runs(seeds=2):
    return parse_spec({"name": "bk", "datasets": ["dsprites_procedural"],
                       "methods": [{"label": "bvae", "objective": "beta_vae", "params": {"beta": 1.0}}],
                       "seeds": seeds, "train": {"steps": 4, "batch_size": 8, "latent_dim": 4, "checkpoint_every": 2,
                                                 "log_every": 2, "num_threads": 1},
                       "evaluation": {"metrics": {}}}, Path("/studies/bk.yaml"))


def test_follow_hint_names_the_results_store(tmp_path):
    spec = _runs()
    line = status_command(spec, ResultsStore(tmp_path / "my store"))
    assert line == f"gmgbench status /studies/bk.yaml --results '{tmp_path / 'my store'}'"
    import inspect

    from gmgbench.harness.slurm import launch

    assert "status_command(spec, store)" in inspect.getsource(launch._launch_locked)


def test_provenance_names_an_array_task_as_sacct_does(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "28")  # an array task's own id: not what squeue/sacct show
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "27")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")
    assert provenance()["slurm_job_id"] == "27_0"
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID")
    assert provenance()["slurm_job_id"] == "28"


def test_a_requeue_leaves_exactly_one_line(tmp_path, monkeypatch):
    """submitit calls checkpoint() and then exits from inside training (SystemExit)."""
    (run,) = _runs(seeds=1).runs()
    task = job.TrainJob(run, str(tmp_path))
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "27")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "0")

    def preempted(*args, **kwargs):
        task.checkpoint()  # what submitit's USR2 handler does first
        raise SystemExit(-1)

    monkeypatch.setattr("gmgbench.harness.executors.execute", preempted)
    with pytest.raises(SystemExit):
        task()
    store = ResultsStore(tmp_path)
    events = job.attempts(store, run.run_id)
    assert [e["event"] for e in events] == ["start", "requeued"] and events[1]["job"] == "27_0"


def test_a_requeue_without_the_signal_is_noted_at_restart(tmp_path, monkeypatch):
    """`scontrol requeue` or a node failure: the process dies without a word."""
    (run,) = _runs(seeds=1).runs()
    store = ResultsStore(tmp_path)
    job._note_attempt(store, run.run_id, "start", job="27_0", restarts=0, step=None)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    monkeypatch.setattr("gmgbench.harness.executors.execute",
                        lambda *a, **k: __import__("gmgbench.harness.executors").harness.executors.Outcome(run.run_id, run.name, "done"))
    job.TrainJob(run, str(tmp_path))()
    events = job.attempts(store, run.run_id)
    assert [e["event"] for e in events] == ["start", "requeued", "start", "end"]
    assert events[1]["noted"] == "at restart"


def test_a_run_in_an_array_a_dead_launcher_left_held_is_held_not_missing(tmp_path, monkeypatch):
    runs = _runs().runs()
    store = ResultsStore(tmp_path)
    j = journal.Journal.new(store, "bk", "tok")
    j.arrays.append({"name": "gmg-bk-tok-r0-c0", "runs": [r.run_id for r in runs], "state": "submitting"})
    j.save()  # the launcher died after sbatch, before recording any job id
    rows = [{"job_id": f"41_{i}", "array_job_id": "41", "name": "gmg-bk-tok-r0-c0", "state": "PENDING",
             "reason": "JobHeldUser"} for i in range(len(runs))]
    monkeypatch.setattr(cluster, "queue", lambda: rows)
    got = status.classify(runs, store)
    assert [s.status for s in got] == ["held", "held"] and [s.job_id for s in got] == ["41_0", "41_1"]
    assert "next `gmgbench launch` adopts" in got[0].note
    monkeypatch.setattr(cluster, "queue", lambda: [])  # it never reached Slurm: the runs are free
    monkeypatch.setattr(cluster, "command", lambda cmd, timeout=60: "")
    assert [s.status for s in status.classify(runs, store)] == ["missing", "missing"]
