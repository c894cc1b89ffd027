"""The zoo studies: dlib's grids in dlib-zoo.yaml, the CPU twin end to end, `gmgbench methods`."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gmgbench.harness.cli import main
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec

STUDIES = Path(__file__).resolve().parents[2] / "studies"
ZOO = {"beta_vae", "annealed_vae", "factor_vae", "dip_vae_i", "dip_vae_ii", "beta_tcvae"}


def test_gmgbench_methods_lists_the_zoo(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        assert name in out, name
    assert "Kim & Mnih" in out and "Kumar et al., 2018, Eq. 7" in out  # each with its paper


def test_dlib_zoo_has_dlibs_grids_and_settings():
    spec = load_spec(STUDIES / "dlib-zoo.yaml")
    runs = spec.runs()
    grids: dict[str, set] = {}
    for r in runs:
        key = {"beta_vae": "beta", "beta_tcvae": "beta", "factor_vae": "gamma", "annealed_vae": "c_max",
               "dip_vae_i": "lambda_od", "dip_vae_ii": "lambda_od"}[r.objective]
        grids.setdefault(r.objective, set()).add(r.objective_params[key])
    assert grids == {
        "beta_vae": {1.0, 2.0, 4.0, 6.0, 8.0, 16.0},
        "annealed_vae": {5.0, 10.0, 25.0, 50.0, 75.0, 100.0},
        "factor_vae": {10.0, 20.0, 30.0, 40.0, 50.0, 100.0},
        "dip_vae_i": {1.0, 2.0, 5.0, 10.0, 20.0, 50.0},
        "dip_vae_ii": {1.0, 2.0, 5.0, 10.0, 20.0, 50.0},
        "beta_tcvae": {1.0, 2.0, 4.0, 6.0, 8.0, 10.0},
    }
    fixed = {(r.objective, k, v) for r in runs for k, v in r.objective_params.items()}
    assert {("annealed_vae", "gamma", 1000.0), ("annealed_vae", "iteration_threshold", 100000),
            ("dip_vae_i", "lambda_d_factor", 10.0), ("dip_vae_ii", "lambda_d_factor", 1.0)} <= fixed
    assert {(r.train.steps, r.train.batch_size, r.train.lr, r.train.latent_dim) for r in runs} == {(300000, 64, 1e-4, 10)}
    assert {d for d, _ in spec.datasets} == {"dsprites_full"}
    assert len(runs) == 36 * 10


def test_cpu_twin_mirrors_the_zoo():
    big, small = load_spec(STUDIES / "dlib-zoo.yaml"), load_spec(STUDIES / "dlib-zoo-cpu.yaml")
    assert {r.objective for r in big.runs()} == {r.objective for r in small.runs()} == ZOO
    assert {r.method for r in big.runs()} == {r.method for r in small.runs()} == ZOO
    # the twin's settings lie in the big study's grids
    assert {(r.objective, tuple(sorted(r.objective_params.items()))) for r in small.runs()
            if r.objective != "annealed_vae"} <= {(r.objective, tuple(sorted(r.objective_params.items()))) for r in big.runs()}


@pytest.mark.slow
def test_cpu_zoo_study_runs_end_to_end(tmp_path, monkeypatch, capsys):
    """The committed CPU twin, unshrunk, through `gmgbench run` and its leaderboard."""
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    store_dir = tmp_path / "store"
    assert main(["run", str(STUDIES / "dlib-zoo-cpu.yaml"), "--results", str(store_dir), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "dlib-zoo-cpu: 12 done, 0 already done, 0 failed" in out
    results = list(ResultsStore(store_dir).iter_results())
    assert {r["config"]["objective"] for r in results} == ZOO
    for r in results:
        final = r["training"]["final"]
        assert final["recon"] < r["training"]["curve"][0]["recon"], r["name"]  # every model learnt something
        if r["config"]["objective"] == "factor_vae":
            assert {"tc", "discriminator_loss", "discriminator_accuracy"} <= set(final)
        if r["config"]["objective"] == "annealed_vae":
            assert final["capacity"] == pytest.approx(10.0)  # C_max reached after 20 steps
    board = (tmp_path / "boards" / "dlib-zoo-cpu" / "latest.md").read_text()
    for label in ZOO:
        assert any(line.startswith(f"| {label} ") for line in board.splitlines()), label
    with open(tmp_path / "boards" / "dlib-zoo-cpu" / "latest" / "aggregate.csv") as f:
        assert len(list(csv.DictReader(f))) >= 6
