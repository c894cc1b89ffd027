"""The estimator comparison script runs, writes its figure and data, and reproduces the
ordering docs/gw.md reports (debiased closest to the truth on permuted isometries)."""
from __future__ import annotations

import json

import pytest
import torch

from gmgbench.harness import gmg_estimators
from gmgbench.harness.gmg_estimators import training
from gmgbench.methods.regularisers.gmg import ESTIMATORS


def test_comparison_runs_and_debiased_is_closest_on_permuted_isometries(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "est.png"
    assert gmg_estimators.main(["--out", str(out), "--costs", "cos", "--epsilon0", "0.05", "--draws", "2",
                                "--n", "24", "--train-steps", "-1"]) == 0
    assert out.stat().st_size > 0
    data = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["case"], r["estimator"]): r for r in data["summary"]}
    assert abs(rows["permuted", "debiased"]["bias/DST"]) < abs(rows["permuted", "plain"]["bias/DST"])
    assert rows["isometry", "clipped"]["estimate"] == 0.0
    assert rows["permuted", "debiased"]["grad cos(true)"] > 0.9
    assert "| cost" in capsys.readouterr().out


@pytest.mark.slow
def test_training_regime_rows_and_the_reference_is_never_negative(tmp_path):
    """The training-regime study on one tiny snapshot per training: every estimator, the
    reference (multi-start, never below the map's own coupling) and plain's solve comparisons
    are recorded; consistent is ≥ 0 by construction, plain may not be."""
    torch.set_num_threads(1)
    rows = training.training_regime([1], 1, ["cos"], [0.1], log=lambda *_: None)
    assert {r["estimator"] for r in rows} == set(ESTIMATORS)
    assert len(rows) == 2 * 2 * len(ESTIMATORS)  # twins × trainings × estimators
    assert all(r["reference"] >= 0 for r in rows)
    assert all(r["value"] >= 0 for r in rows if r["estimator"] in ("consistent", "clipped"))
    plain = [r for r in rows if r["estimator"] == "plain"]
    assert all(isinstance(r["beats_own_cost"], bool) and isinstance(r["beats_own_entropic"], bool) for r in plain)
    summary = training.summarise_training(rows)
    training.training_figure(summary, tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 0
