"""The estimator comparison script runs, writes its figure and data, and reproduces the
ordering docs/gw.md reports (debiased closest to the truth on permuted isometries)."""
from __future__ import annotations

import json

import torch

from harness import gmg_estimators


def test_comparison_runs_and_debiased_is_closest_on_permuted_isometries(tmp_path, capsys):
    torch.set_num_threads(1)
    out = tmp_path / "est.png"
    assert gmg_estimators.main(["--out", str(out), "--costs", "cos", "--eps0", "0.05", "--draws", "2",
                                "--n", "24", "--train-steps", "-1"]) == 0
    assert out.stat().st_size > 0
    data = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["case"], r["estimator"]): r for r in data["summary"]}
    assert abs(rows["permuted", "debiased"]["bias/DST"]) < abs(rows["permuted", "plain"]["bias/DST"])
    assert rows["isometry", "clipped"]["estimate"] == 0.0
    assert rows["permuted", "debiased"]["grad cos(true)"] > 0.9
    assert "| cost" in capsys.readouterr().out
