"""A tiny study through the CLI, from spec to leaderboard, checked against the stored results."""
from __future__ import annotations

import numpy as np

from gmgbench.harness.cli import main
from gmgbench.harness.results import ResultsStore


def test_tiny_study_end_to_end(write_spec, tiny_spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    tiny_spec["methods"].append({"label": "bvae+gmg", "objective": "beta_vae", "params": {"beta": 1.0},
                                 "regularisers": [{"name": "gmg", "params": {"cost": "cos", "weight": 1.0}}]})
    tiny_spec["evaluation"]["metrics"]["dci"] = {"num_train": 64, "num_test": 32}
    spec_path = write_spec(tiny_spec)
    store_dir = tmp_path / "store"

    assert main(["run", str(spec_path), "--results", str(store_dir), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "tiny: 6 done, 0 already done, 0 failed" in out
    results = list(ResultsStore(store_dir).iter_results())
    assert len(results) == 6

    # The printed leaderboard is the stored one, and each selected cell is the mean ± std of
    # the stored per-seed values of the setting with the best mean DCI.
    board = (tmp_path / "boards" / "tiny" / "latest.md").read_text()
    assert board.strip() in out
    for label in ("bvae", "bvae+gmg"):
        mine = [r for r in results if r["config"]["method"] == label]
        by_setting: dict[str, list[dict]] = {}
        for r in mine:
            by_setting.setdefault(repr(r["config"]["objective_params"]), []).append(r)
        best = max(by_setting.values(), key=lambda rs: np.mean([r["metrics"]["dci"]["disentanglement"] for r in rs]))
        for metric, key in (("dci", "disentanglement"), ("mig", "discrete_mig")):
            values = np.array([r["metrics"][metric][key] for r in best])
            cell = f"{values.mean():.3f} ± {values.std(ddof=1):.3f} ({len(values)})"
            # The dataset table's rows carry the selected setting ("beta=..."), the overview's do not.
            row = next(line for line in board.splitlines() if line.startswith(f"| {label} ") and "beta=" in line)
            assert cell in row, (label, metric, cell, row)

    # A second run finds everything done and trains nothing.
    assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    assert "tiny: 0 done, 6 already done, 0 failed" in capsys.readouterr().out


def test_evaluate_adds_metrics_to_a_stored_run(write_spec, tiny_spec, tmp_path, capsys):
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["seeds"] = 1
    spec_path = write_spec(tiny_spec)
    store_dir = tmp_path / "store"
    assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    (result,) = list(ResultsStore(store_dir).iter_results())
    before = result["metrics"]["mig"]
    settings = '{"sap": {"num_train": 64, "num_test": 32}, "dci_fast": {"num_train": 64, "num_test": 32}}'
    assert main(["evaluate", result["run_id"], "--results", str(store_dir), "--metrics", settings]) == 0
    after = ResultsStore(store_dir).read_result(result["run_id"])
    assert after["metrics"]["mig"] == before
    assert 0.0 <= after["metrics"]["sap"]["SAP_score"] <= 1.0
    assert set(after["metrics"]["dci_fast"]) == {"informativeness_train", "informativeness_test", "disentanglement",
                                                 "completeness"}
    assert main(["evaluate", "0000000000000000", "--results", str(store_dir)]) == 1
    assert "0000000000000000" in capsys.readouterr().err

    # A stored metric is not replaced unless asked; --no-write prints and leaves the result alone.
    stored_file = next((store_dir / "runs").glob("*.json"))
    before_bytes = stored_file.read_bytes()
    assert main(["evaluate", result["run_id"], "--results", str(store_dir), "--metrics", settings]) == 1
    assert "already has dci_fast, sap" in capsys.readouterr().err
    assert main(["evaluate", result["run_id"], "--results", str(store_dir), "--metrics", settings, "--no-write"]) == 0
    assert '"dci_fast"' in capsys.readouterr().out
    assert stored_file.read_bytes() == before_bytes
    assert main(["evaluate", result["run_id"], "--results", str(store_dir), "--metrics", settings, "--force"]) == 0


def test_a_done_run_whose_defaults_changed_is_kept_and_named(write_spec, tiny_spec, tmp_path, capsys):
    # The run id hashes what the spec sets, not the defaults: a stored result whose method ran
    # with another default is still "done", and `run` says which parameter differs.
    import json

    tiny_spec["methods"] = [{"label": "bvae+gmg", "objective": "beta_vae", "params": {"beta": 1.0},
                             "regularisers": [{"name": "gmg", "params": {"weight": 1.0}}]}]
    tiny_spec["seeds"] = 1
    spec_path = write_spec(tiny_spec)
    store_dir = tmp_path / "store"
    assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    (path,) = (store_dir / "runs").glob("*.json")
    result = json.loads(path.read_text())
    assert result["method_config"]["regularisers"][0]["params"]["use_mean"] is None
    capsys.readouterr()

    assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    assert "other defaults" not in capsys.readouterr().err

    result["method_config"]["regularisers"][0]["params"]["use_mean"] = False  # as if the default had changed
    path.write_text(json.dumps(result))
    assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    captured = capsys.readouterr()
    assert "gmg.use_mean: False (stored) -> None (now)" in captured.err and "--force reruns it" in captured.err
    assert "tiny: 0 done, 1 already done, 0 failed" in captured.out
