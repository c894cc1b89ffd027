"""The launcher's planning and bookkeeping, without Slurm: profiles, grouping, chunking,
the parallelism split, dry runs, run states and recovery after a dead launcher."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import submitit

from gmgbench.harness import status
from gmgbench.harness.slurm import cluster, job, journal, plan
from gmgbench.harness.slurm.cluster import JobState, SlurmError
from gmgbench.harness.slurm.launch import launch
from gmgbench.harness.slurm.profile import Profile, ProfileError, load_profile
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import SpecError, parse_spec

REPO = Path(__file__).resolve().parents[2]


def _spec(methods=None, seeds=2, resources=None):
    raw = {"name": "plan", "datasets": ["dsprites_procedural"],
           "methods": methods or [{"label": "bvae", "objective": "beta_vae", "params": {"beta": [1.0, 2.0, 4.0]}}],
           "seeds": seeds, "train": {"steps": 20, "batch_size": 16, "latent_dim": 4, "checkpoint_every": 10,
                                     "log_every": 10, "num_threads": 1},
           "evaluation": {"metrics": {}}}
    if resources:
        raw["resources"] = resources
    return parse_spec(raw)


# -- profiles ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["local.yaml", "template.yaml"])
def test_shipped_profiles_parse(name):
    p = load_profile(REPO / "slurm" / "profiles" / name)
    assert p.max_array_size is None and p.array_parallelism >= 1 and p.resources["timeout_min"] >= 15


@pytest.mark.parametrize("raw, message", [
    ({"resorces": {}}, "resorces: unknown key"),
    ({"resources": {"timeout_mins": 5}}, "did you mean 'timeout_min'"),
    ({"resources": {"slurm_partiton": "gpu"}}, "did you mean 'slurm_partition'"),
    ({"resources": {"slurm_array_parallelism": 3}}, "set by the launcher"),
    ({"max_array_size": 0}, "max_array_size: expected a positive integer or 'auto'"),
    ({"array_parallelism": "many"}, "array_parallelism: expected a positive integer"),
    ([1, 2], "a profile is a YAML mapping"),
])
def test_bad_profiles_name_file_and_key(raw, message, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(raw))
    with pytest.raises(ProfileError, match=message) as err:
        load_profile(path)
    assert str(path) in str(err.value)


def test_missing_profile_points_to_the_template(tmp_path):
    with pytest.raises(ProfileError, match="template.yaml"):
        load_profile(tmp_path / "nope.yaml")


# -- grouping, chunking, parallelism ------------------------------------------------------
def test_spec_resources_reach_submitit_and_the_journal_as_plain_data():
    """The spec's resources are read-only (nested ones too); what the launcher hands on is
    dicts and lists again, which submitit takes and the journal writes as JSON."""
    written = {"slurm_additional_parameters": {"exclusive": True}, "slurm_setup": ["module load x"]}
    run = _spec(resources=written).runs()[0]
    with pytest.raises(TypeError):
        run.resources["slurm_setup"][0] = "rm -rf"
    res = plan.run_resources(run, Profile(resources={"timeout_min": 30}))
    assert res == {"timeout_min": 30, **written}
    assert type(res["slurm_additional_parameters"]) is dict and type(res["slurm_setup"]) is list
    assert json.loads(json.dumps(res)) == res
    # The same list in the profile and the spec is no override to report.
    same = Profile(resources={"timeout_min": 30, "slurm_setup": ["module load x"]})
    assert not [n for n in plan.resource_notes([run], same) if n.startswith("slurm_setup")]
    other = Profile(resources={"slurm_setup": ["module load y"]})
    assert plan.resource_notes([run], other) == ["slurm_setup: the study sets ['module load x'] over the profile's "
                                                 "['module load y'] (bvae)",
                                                 "slurm_additional_parameters: the study asks {'exclusive': True}, "
                                                 "which the profile does not set (bvae)"]


def test_method_resources_override_profile_and_split_groups():
    methods = [{"label": "light", "objective": "beta_vae", "params": {"beta": 1.0}},
               {"label": "heavy", "objective": "beta_vae", "params": {"beta": 2.0},
                "resources": {"timeout_min": 99, "mem_gb": 8}}]
    runs = _spec(methods, seeds=3, resources={"mem_gb": 2}).runs()
    profile = Profile(resources={"timeout_min": 30, "mem_gb": 1, "slurm_partition": "p"})
    groups = plan.group_runs(runs, profile)
    assert [len(g) for _, g in groups] == [3, 3]
    assert groups[0][0] == {"timeout_min": 30, "mem_gb": 2, "slurm_partition": "p"}  # study beats profile
    assert groups[1][0] == {"timeout_min": 99, "mem_gb": 8, "slurm_partition": "p"}  # method beats study
    assert {r.method for r in groups[1][1]} == {"heavy"}


@pytest.mark.parametrize("n, size, expected", [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (2, 5, [2]), (0, 4, [])])
def test_chunk_sizes(n, size, expected):
    parts = plan.chunk(list(range(n)), size)
    assert [len(p) for p in parts] == expected and sum(parts, []) == list(range(n))


def test_chunk_rejects_nonpositive_size():
    with pytest.raises(ValueError, match="chunk size"):
        plan.chunk([1], 0)


@pytest.mark.parametrize("sizes, cap", [([5, 3], 2), ([5, 1], 4), ([10, 10, 3], 7), ([2, 2], 100), ([4, 4, 4], 2)])
def test_parallelism_split_keeps_the_cap(sizes, cap):
    alloc = plan.split_parallelism(sizes, cap)
    assert all(1 <= a <= s for a, s in zip(alloc, sizes))
    assert sum(alloc) == max(len(sizes), min(cap, sum(sizes)))


def test_plan_arrays_chunks_each_group_and_names_them_uniquely():
    runs = _spec(seeds=3).runs()  # 9 runs, one resource set
    plans = plan.plan_arrays(runs, Profile(array_parallelism=4), max_array_size=4, prefix="gmg-x-tok")
    assert [len(p.runs) for p in plans] == [4, 4, 1]
    assert [p.name for p in plans] == ["gmg-x-tok-r0-c0", "gmg-x-tok-r0-c1", "gmg-x-tok-r0-c2"]
    assert [r for p in plans for r in p.runs] == runs  # order kept, nothing lost or doubled
    assert plans[0].array_spec.startswith("0-3%") and plans[2].array_spec == "0-0%1"
    assert sum(p.parallelism for p in plans) == 4


# -- dry run --------------------------------------------------------------------------------
def test_dry_run_prints_arrays_and_runs_and_submits_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda _: None)  # as on a machine without Slurm
    spec = _spec(seeds=2)
    store = ResultsStore(tmp_path / "store")
    lines = []
    plans = launch(spec, store, Profile(max_array_size=4, array_parallelism=2), dry_run=True, say=lines.append,
                   verbose=True)
    text = "\n".join(lines)
    assert "would submit 6 runs as 2 arrays (at most 4 tasks each, from the profile" in text
    assert "--array=0-3%1" in text and "--array=0-1%1" in text
    for run in spec.runs():
        assert run.run_id in text and run.name in text
    assert len(plans) == 2 and not (tmp_path / "store").exists()


def test_launch_without_slurm_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda _: None)
    with pytest.raises(SlurmError, match="squeue not found"):
        launch(_spec(), ResultsStore(tmp_path), Profile())


def test_bad_resources_in_the_spec_are_caught_when_it_loads(tmp_path):
    with pytest.raises(SpecError, match="resources.gpus: unknown submitit parameter"):
        _spec(resources={"gpus": 1})
    with pytest.raises(SpecError, match=r"methods\[0\].resources.timeout_mins: unknown submitit parameter \(did you mean"):
        _spec(methods=[{"objective": "beta_vae", "resources": {"timeout_mins": 5}}])


# -- run states -------------------------------------------------------------------------------
def test_classify_combines_store_and_slurm(tmp_path, monkeypatch):
    runs = _spec(seeds=3).runs()[:8]
    store = ResultsStore(tmp_path)
    store.write_result(runs[0].run_id, {"run_id": runs[0].run_id})
    slurm = {"1_1": JobState("RUNNING", active=True), "1_2": JobState("PENDING", "JobArrayTaskLimit", active=True),
             "1_3": JobState("PENDING", "JobHeldUser", active=True), "1_4": JobState("FAILED", exit_code="1:0"),
             "1_5": JobState("TIMEOUT", exit_code="0:0"), "1_6": JobState("COMPLETED", exit_code="0:0")}
    for i in range(1, 7):
        store.record_job(runs[i].run_id, {"job_id": f"1_{i}"})
    store.write_failure(runs[4].run_id, {"error": "FloatingPointError: loss is nan"})
    monkeypatch.setattr(cluster, "job_states", lambda ids: {j: slurm[j] for j in ids})
    got = [s.status for s in status.classify(runs, store)]
    assert got == ["done", "running", "queued", "held", "failed", "failed", "missing", "missing"]
    notes = [s.note for s in status.classify(runs, store)]
    assert "loss is nan" in notes[4] and "TIMEOUT" in notes[5] and "no result" in notes[6]


def test_a_queued_run_with_an_old_failure_record_counts_as_queued(tmp_path, monkeypatch):
    (run,) = _spec(methods=[{"objective": "beta_vae", "params": {"beta": 1.0}}], seeds=1).runs()
    store = ResultsStore(tmp_path)
    store.write_failure(run.run_id, {"error": "old"})
    store.record_job(run.run_id, {"job_id": "9"})
    monkeypatch.setattr(cluster, "job_states", lambda ids: {"9": JobState("PENDING", "Priority", active=True)})
    assert status.classify([run], store)[0].status == "queued"  # --retry-failed resubmitted it


# -- recovery after a dead launcher ---------------------------------------------------------
@pytest.fixture
def fake_slurm(monkeypatch):
    calls = []
    monkeypatch.setattr(cluster, "command", lambda cmd, timeout=60: calls.append(cmd) or "")
    return calls


def _journal(store, state, names=("gmg-a-r0-c0",), runs=("r1", "r2")):
    j = journal.Journal.new(store, "a", "tok")
    for name in names:
        j.arrays.append({"name": name, "runs": list(runs), "state": state})
    j.save()
    return j


def test_recover_frees_runs_of_an_array_that_never_reached_slurm(tmp_path, monkeypatch, fake_slurm):
    store = ResultsStore(tmp_path)
    _journal(store, "submitting")
    monkeypatch.setattr(cluster, "queue", lambda: [])
    journal.recover(store, say=lambda s: None)
    assert journal.Journal.all(store)[0].arrays[0]["state"] == "abandoned" and fake_slurm == []
    assert store.jobs("r1") == []


def test_recover_adopts_a_held_array_whose_pickles_are_in_place(tmp_path, monkeypatch, fake_slurm):
    store = ResultsStore(tmp_path)
    _journal(store, "submitting")
    monkeypatch.setattr(cluster, "queue", lambda: [{"job_id": "7_0", "array_job_id": "7", "name": "gmg-a-r0-c0",
                                                   "state": "PENDING", "reason": "JobHeldUser"}])
    for jid in ("7_0", "7_1"):
        p = submitit.core.utils.JobPaths(store.slurm_dir(), job_id=jid).submitted_pickle
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    journal.recover(store, say=lambda s: None)
    assert fake_slurm == [["scontrol", "release", "7"]]
    assert [store.jobs(r)[-1]["job_id"] for r in ("r1", "r2")] == ["7_0", "7_1"]
    assert journal.Journal.all(store)[0].arrays[0]["state"] == "released"
    journal.recover(store, say=lambda s: None)  # idempotent: nothing left to do
    assert len(fake_slurm) == 1 and len(store.jobs("r1")) == 1


def test_recover_cancels_a_submitted_array_without_pickles(tmp_path, monkeypatch, fake_slurm):
    store = ResultsStore(tmp_path)
    _journal(store, "submitting")
    monkeypatch.setattr(cluster, "queue", lambda: [{"job_id": "8_0", "array_job_id": "8", "name": "gmg-a-r0-c0",
                                                   "state": "PENDING", "reason": "JobHeldUser"}])
    journal.recover(store, say=lambda s: None)
    assert fake_slurm == [["scancel", "8"]]
    assert journal.Journal.all(store)[0].arrays[0]["state"] == "abandoned" and store.jobs("r1") == []


def test_recover_releases_a_held_array_with_known_ids(tmp_path, fake_slurm):
    store = ResultsStore(tmp_path)
    j = _journal(store, "held")
    j.arrays[0].update(job_id="5", job_ids=["5_0", "5_1"])
    j.save()
    store.record_job("r1", {"job_id": "5_0"})  # the launcher died halfway through recording
    journal.recover(store, say=lambda s: None)
    assert fake_slurm == [["scontrol", "release", "5"]]
    assert [len(store.jobs(r)) for r in ("r1", "r2")] == [1, 1] and store.jobs("r2")[0]["job_id"] == "5_1"


def test_one_launcher_per_store(tmp_path):
    store = ResultsStore(tmp_path)
    with journal.launch_lock(store):
        with pytest.raises(SlurmError, match="another `gmgbench launch` is running"):
            with journal.launch_lock(store):
                pass
    with journal.launch_lock(store):  # released when the first one ends
        pass


# -- the job itself ---------------------------------------------------------------------------
def test_train_job_raises_on_failure_so_slurm_records_failed(tmp_path):
    methods = [{"objective": "beta_vae", "params": {"beta": 1.0}, "train": {"lr": 1.0e10}}]
    (run,) = _spec(methods, seeds=1).runs()
    task = job.TrainJob(run, str(tmp_path))
    with pytest.raises(job.RunFailed, match="FloatingPointError"):
        task()
    store = ResultsStore(tmp_path)
    assert not store.has_result(run.run_id) and store.read_failure(run.run_id) is not None
    assert [a["event"] for a in job.attempts(store, run.run_id)] == ["start", "end"]
    requeued = task.checkpoint()
    assert isinstance(requeued, submitit.helpers.DelayedSubmission) and requeued.function is task


def test_format_status_shows_log_and_stderr_of_failed_runs():
    report = {"study": "s", "store": "/r", "total": 2,
              "counts": {"done": 1, "running": 0, "queued": 0, "held": 0, "failed": 1, "missing": 0},
              "runs": [{"run_id": "a", "name": "m@d", "status": "done"},
                       {"run_id": "b", "name": "m2@d", "status": "failed", "job_id": "3_1", "note": "boom",
                        "log": "/r/slurm/3_1_0_log.err", "stderr_tail": ["Traceback", "RunFailed: boom"]}]}
    text = status.format_status(report)
    assert "1/2 done (50%)" in text and "/r/slurm/3_1_0_log.err" in text and "| RunFailed: boom" in text


def test_release_tolerates_an_array_a_user_already_released_or_cancelled(monkeypatch):
    def refuse(cmd, timeout=60):
        raise SlurmError("scontrol release: Invalid job id specified")

    monkeypatch.setattr(cluster, "command", refuse)
    monkeypatch.setattr(cluster, "queue", lambda: [])
    cluster.release("12")  # gone: nothing to do
    monkeypatch.setattr(cluster, "queue", lambda: [{"job_id": "12_0", "array_job_id": "12", "name": "n",
                                                   "state": "PENDING", "reason": "JobHeldUser"}])
    with pytest.raises(SlurmError):
        cluster.release("12")  # still held: a real problem
