"""Plugins on a real Slurm (slurm/local; issue 27): an installed package's method trains in
Slurm jobs, and a plugin fixed mid-study is finished on the cluster with `launch` alone."""
from __future__ import annotations

import os
import textwrap

import pytest

from gmgbench.harness.results import ResultsStore
from gmgbench.harness.slurm.journal import log_paths
from gmgbench.methods import registry
from slurm_helpers import cli, status_json, wait_settled
from test_plugin_fix import BUGGY, FIXED
from dist_helpers import install_distribution

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

L1 = """
    from gmgbench.methods.base import Regulariser
    from gmgbench.methods.registry import register
    @register
    class L1(Regulariser):
        name = "ep_l1"
        def __call__(self, out):
            return out.mu.abs().mean(), {}
    """


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A throwaway installed package, seen by the jobs (PYTHONPATH) and by this process."""
    site = tmp_path / "site"
    install_distribution(site, "gmgbench_ep_slurm", L1, entry="l1")
    monkeypatch.syspath_prepend(str(site))
    with registry.isolated():
        yield site


def test_entry_point_and_fixed_plugin_are_finished_on_slurm(slurm_cluster, study, profile, tmp_path, site):
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    (tmp_path / "bug.py").write_text(textwrap.dedent(BUGGY))
    ok = {"label": "ok", "objective": "beta_vae",
          "regularisers": [{"name": "bug", "params": {"weight": 0.1}}, {"name": "ep_l1", "params": {"weight": 0.1}}]}
    broken = {"label": "broken", "objective": "beta_vae",
              "regularisers": [{"name": "bug", "params": {"weight": 0.1, "explode": True}}]}
    spec_path, results = study("plugfix", methods=[ok, broken], plugins=["bug.py"],
                               train={"steps": 4, "batch_size": 8, "latent_dim": 4, "checkpoint_every": 2,
                                      "log_every": 1, "num_threads": 1})
    prof = profile()

    def launch(*flags):
        res = cli("launch", spec_path, "--profile", prof, "--results", results, *flags, env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    def report():
        wait_settled(spec_path, results)
        return status_json(spec_path, results)

    launch()
    first = report()
    assert first["counts"]["done"] == 1 and first["counts"]["failed"] == 1, first  # ep_l1 trained in a job
    (bad,) = [r for r in first["runs"] if r["status"] == "failed"]
    assert "ValueError: the bug" in bad["note"]

    (tmp_path / "bug.py").write_text(textwrap.dedent(FIXED))
    text = cli("status", spec_path, "--results", results, env=env).stdout
    assert "--retry-failed" in text and "--rerun-stale" in text, text
    assert "1 run to start over" in launch("--retry-failed")
    second = report()
    assert second["counts"]["done"] == 2 and second["counts"]["stale"] == 1, second
    store = ResultsStore(results)
    log = log_paths(store, store.jobs(bad["run_id"])[-1]["job_id"])[0].read_text()
    assert "rerun beside the stored run (--force), from step 0" in log and "resuming" not in log

    assert "1 run to start over" in launch("--rerun-stale")
    third = report()
    assert third["counts"]["done"] == 2 and third["counts"]["stale"] == 0 and third["counts"]["failed"] == 0
    assert "nothing to submit" in launch("--retry-failed", "--rerun-stale")
    final = cli("status", spec_path, "--results", results, env=env).stdout
    assert "launch" not in final, final
