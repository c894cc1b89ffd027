"""What `launch --dry-run` says about resources (issue 27): every study value that differs
from the profile, an addition included, with method lists grouped, proper plurals, and a
`--probe` hint only where a probe would be used."""
from __future__ import annotations

import pytest

from gmgbench.harness.commands import jobs as jobs_cmd
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm import cluster
from gmgbench.harness.slurm.launch import launch
from gmgbench.harness.slurm.plan import resource_notes
from gmgbench.harness.slurm.profile import Profile, parse_profile
from gmgbench.harness.spec import parse_spec


@pytest.fixture(autouse=True)
def no_slurm(monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda _: None)


def _spec(resources=None, n_gmg=6, n_other=7):
    methods = [{"label": f"gmg{i}", "objective": "beta_vae", "params": {"beta": float(i + 1)},
                "regularisers": [{"name": "gmg", "params": {"weight": 0.1}}], "resources": {"timeout_min": 1440}}
               for i in range(n_gmg)]
    methods += [{"label": f"plain{i}", "objective": "beta_vae", "params": {"beta": float(i + 1)}}
                for i in range(n_other)]
    return parse_spec({"name": "res", "datasets": ["dsprites_procedural"], "methods": methods, "seeds": 1,
                       "train": {"steps": 10, "batch_size": 8, "num_threads": 1}, "evaluation": {"metrics": {}},
                       "resources": resources or {"timeout_min": 720, "gpus_per_node": 1, "mem_gb": 32}})


def test_every_difference_from_the_profile_is_said_with_methods_grouped():
    """The local CPU profile does not plan GPU jobs silently, and 13 method names are not inlined."""
    runs = _spec().runs()
    profile = parse_profile({"resources": {"mem_gb": 1, "timeout_min": 20}})
    notes = resource_notes(runs, profile)
    assert "gpus_per_node: the study asks 1, which the profile does not set (all 13 methods)" in notes
    assert "mem_gb: the study sets 32 over the profile's 1 (all 13 methods)" in notes
    assert "timeout_min: the study sets 1440 over the profile's 20 (the 6 methods with gmg)" in notes
    assert "timeout_min: the study sets 720 over the profile's 20 (the 7 methods without gmg)" in notes
    assert all(len(n) < 120 for n in notes), notes


def test_an_ungroupable_method_list_is_cut_unless_verbose():
    methods = [{"label": f"p{i}", "objective": "beta_vae", "params": {"beta": float(i + 1)},
                **({"resources": {"mem_gb": 4}} if i < 5 else {})} for i in range(8)]
    spec = parse_spec({"name": "res", "datasets": ["dsprites_procedural"], "methods": methods, "seeds": 1,
                       "train": {"steps": 10, "batch_size": 8, "num_threads": 1}, "evaluation": {"metrics": {}}})
    profile = parse_profile({"resources": {"mem_gb": 1}})
    assert resource_notes(spec.runs(), profile) == [
        "mem_gb: the study sets 4 over the profile's 1 (5 methods: p0, p1, p2, …; --verbose lists them)"]
    assert resource_notes(spec.runs(), profile, verbose=True) == [
        "mem_gb: the study sets 4 over the profile's 1 (p0, p1, p2, p3, p4)"]
    few = [r for r in spec.runs() if r.method in ("p0", "p1", "p5")]
    assert resource_notes(few, profile) == ["mem_gb: the study sets 4 over the profile's 1 (p0, p1)"]


def test_one_array_is_singular(tmp_path):
    spec = _spec(resources={"mem_gb": 4}, n_gmg=0, n_other=1)
    lines: list[str] = []
    launch(spec, ResultsStore(tmp_path / "s"), Profile(), dry_run=True, say=lines.append)
    assert "would submit 1 run as 1 array (at most" in "\n".join(lines)
    assert "1 arrays" not in "\n".join(lines) and "1 runs" not in "\n".join(lines)


def test_probe_is_not_recommended_for_gpu_runs(tmp_path, capsys):
    spec = _spec(n_gmg=0, n_other=1)  # gpus_per_node: 1
    jobs_cmd._print_estimate(spec, ResultsStore(tmp_path / "s"), Profile(), probe=None)
    out = capsys.readouterr().out
    assert "GPU-hours" in out and "--probe" not in out


def test_the_estimate_covers_what_the_launch_would_submit(tmp_path, capsys, monkeypatch):
    """Nothing to submit (a failed run left out): no estimate for runs that will not run."""
    import argparse

    spec = _spec(n_gmg=0, n_other=1)
    store = ResultsStore(tmp_path / "s")
    (run,) = spec.runs()
    store.write_failure(run.run_id, {"error": "ValueError: x"})
    monkeypatch.setattr(jobs_cmd, "load_study", lambda args, check_methods=True: (spec, store))
    prof = tmp_path / "p.yaml"
    prof.write_text("resources: {mem_gb: 1}\n")
    args = argparse.Namespace(profile=prof, dry_run=True, retry_failed=False, force=False, rerun_stale=False,
                              probe=None, tensorboard=False, callback=[], results=None)
    jobs_cmd.cmd_launch(args)
    out = capsys.readouterr().out
    assert "nothing to submit" in out and "estimated training time" not in out
    args.retry_failed = True
    jobs_cmd.cmd_launch(args)
    assert "estimated training time" in capsys.readouterr().out
