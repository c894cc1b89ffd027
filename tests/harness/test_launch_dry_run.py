"""`launch --dry-run`: a grouped summary, profile limits that cap a study's resources, and
time estimates in the right unit from measured step times (store, probe) or a stated range."""
from __future__ import annotations

import pytest
import yaml

from gmgbench.harness import cli, estimate
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.launch import launch
from gmgbench.harness.slurm.plan import resource_notes, run_resources
from gmgbench.harness.slurm.profile import Profile, ProfileError, parse_profile
from gmgbench.harness.spec import load_spec


@pytest.fixture(autouse=True)
def no_slurm(monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda _: None)  # as on a machine without Slurm


@pytest.fixture
def study(write_spec, tiny_spec):
    tiny_spec["datasets"] = ["dsprites_procedural", "shapes3d_procedural"]
    tiny_spec["methods"].append({"label": "big", "objective": "beta_vae",
                                 "resources": {"cpus_per_task": 16, "timeout_min": 3000}})
    tiny_spec["resources"] = {"mem_gb": 8}
    return write_spec(tiny_spec)


def test_profile_limits_cap_the_study_and_say_so(study):
    runs = load_spec(study).runs()
    profile = parse_profile({"resources": {"cpus_per_task": 4, "mem_gb": 2, "timeout_min": 60},
                             "limits": {"cpus_per_task": 8, "timeout_min": 1440}})
    big = next(r for r in runs if r.method == "big")
    small = next(r for r in runs if r.method == "bvae")
    assert run_resources(big, profile) == {"cpus_per_task": 8, "mem_gb": 8, "timeout_min": 1440}
    assert run_resources(small, profile) == {"cpus_per_task": 4, "mem_gb": 8, "timeout_min": 60}
    notes = resource_notes(runs, profile)
    assert "cpus_per_task: asked 16, capped to the profile's limit 8 (big)" in notes
    assert "timeout_min: asked 3000, capped to the profile's limit 1440 (big)" in notes
    assert "mem_gb: the study sets 8 over the profile's 2 (big, bvae)" in notes


@pytest.mark.parametrize("raw, message", [
    ({"limits": {"cpus_per_tsk": 4}}, "limits.cpus_per_tsk: unknown submitit parameter (did you mean 'cpus_per_task'?)"),
    ({"limits": {"mem_gb": "lots"}}, "limits.mem_gb: a limit is a positive number"),
    ({"limits": {"timeout_min": 0}}, "limits.timeout_min: a limit is a positive number"),
])
def test_bad_limits_name_the_key(raw, message):
    with pytest.raises(ProfileError, match=None) as err:
        parse_profile(raw)
    assert message in str(err.value)


def test_dry_run_summary_groups_runs_and_lists_them_only_when_verbose(study, tmp_path):
    spec = load_spec(study)
    lines: list[str] = []
    plans = launch(spec, ResultsStore(tmp_path / "s"), Profile(limits={"cpus_per_task": 8}), dry_run=True,
                   say=lines.append)
    text = "\n".join(lines)
    assert len(plans) == 2  # the capped "big" runs still have their own resources
    assert f"--array=0-{len(plans[0].runs) - 1}%" in text and f"  {len(plans[0].runs)} runs  " in text
    table = text[text.index("runs to submit:"):].splitlines()
    assert table[1].split() == ["method", "dsprites_procedural", "shapes3d_procedural", "total"]
    assert table[3].split() == ["bvae", "4", "4", "8"] and table[4].split() == ["big", "2", "2", "4"]
    assert table[5].split() == ["total", "6", "6", "12"]
    assert "(--verbose lists every run)" in text
    assert not any(r.run_id in text for r in spec.runs())
    verbose: list[str] = []
    launch(spec, ResultsStore(tmp_path / "s"), Profile(), dry_run=True, say=verbose.append, verbose=True)
    assert all(r.run_id in "\n".join(verbose) for r in spec.runs())


def _cpu_result(store, run, seconds):
    store.write_result(run.run_id, {"config": run.to_dict(), "training": {"seconds_per_step": seconds, "device": "cpu"}})


def test_estimate_uses_the_device_kind_of_measured_runs(study, tmp_path):
    runs = load_spec(study).runs()
    store = ResultsStore(tmp_path / "s")
    _cpu_result(store, runs[0], 0.05)
    cpu = estimate.describe(runs[1:], store, None, unit="CPU-job")
    assert "CPU-job-hours" in cpu and "from the median of this store's finished runs on a CPU" in cpu
    assert f"{0.05 / estimate.relative_cost(runs[0]) * 1000:.1f} ms per step" in cpu
    gpu = estimate.describe(runs[1:], store, None, unit="GPU")  # CPU times say nothing about a GPU
    assert "GPU-hours at 5 to 20 ms per step (an assumption" in gpu
    empty = ResultsStore(tmp_path / "empty")
    assert "CPU-job-hours at 100 to 300 ms per step" in estimate.describe(runs, empty, None, unit="CPU-job")
    sibling = estimate.describe(runs, empty, None, unit="CPU-job", also=[store])
    assert f"from the median of finished runs in {store.root} on a CPU" in sibling


def test_small_estimates_are_not_rounded_to_zero(study, tmp_path):
    runs = load_spec(study).runs()
    line = estimate.describe(runs, ResultsStore(tmp_path / "e"), None, unit="CPU-job")
    assert " 0 to 0 " not in line and "0.00" in line  # 12 runs x 4 tiny steps: seconds, in hours


def test_cli_dry_run_picks_the_unit_from_the_planned_resources(study, tmp_path, capsys):
    profile = tmp_path / "cpu.yaml"
    profile.write_text(yaml.safe_dump({"resources": {"cpus_per_task": 2}}))
    assert cli.main(["launch", str(study), "--profile", str(profile), "--dry-run", "--results", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "CPU-job-hours" in out and "GPU-hours" not in out
    profile.write_text(yaml.safe_dump({"resources": {"gpus_per_node": 1}}))
    assert cli.main(["launch", str(study), "--profile", str(profile), "--dry-run", "--results", str(tmp_path / "s"),
                     "--only", "method=bvae"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours" in out and "CPU-job-hours" not in out and "method=bvae" not in out


def test_probe_measures_a_beta_vae_step_here(study):
    run = load_spec(study).runs()[0]
    seconds = estimate.probe_step_seconds(run, steps=4)
    assert 0 < seconds < 60
