"""An inert regulariser is flagged on the leaderboard; an active one is not; old results say 'unknown'."""
from __future__ import annotations

from pathlib import Path

import pytest

from gmgbench.harness.leaderboard import build, verify
from gmgbench.harness.leaderboard.health_flag import EXPLANATION, FLAG
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec, RegulariserSpec
from lb_helpers import make_spec, result

REPO = Path(__file__).resolve().parents[2]


def _health(share: float, frac_below: float) -> dict:
    return {"every": 50, "terms": {"gmg": {"weight": 100.0, "inert": frac_below > 0.5,
                                           "grad_share": {"median": share, "frac_below": frac_below, "n": 40}}}}


def _spec():
    return make_spec(datasets=("ds_a",), methods=(
        MethodSpec("base", "beta_vae", {"beta": 1.0}),
        MethodSpec("noop", "beta_vae", {"beta": 1.0}, (RegulariserSpec("gmg", {"weight": 100.0}),)),
        MethodSpec("acts", "beta_vae", {"beta": 1.0}, (RegulariserSpec("gmg", {"weight": 1e5}),)),
    ))


def _store(tmp_path, with_health: bool = True) -> ResultsStore:
    store = ResultsStore(tmp_path / "results")
    for run in _spec().runs():
        res = result(run, {"dci.disentanglement": 0.3 + 0.1 * run.seed, "mig.discrete_mig": 0.1})
        if with_health and run.regularisers:
            res["health"] = _health(2e-4, 1.0) if run.method == "noop" else _health(0.2, 0.0)
        store.write_result(run.run_id, res)
    return store


def _row(md: str, method: str, section: str = "## ds_a") -> str:
    part = md.split(section, 1)[1]
    return next(line for line in part.splitlines() if line.startswith(f"| {method} "))


def test_inert_entry_is_flagged_and_active_one_is_not(tmp_path):
    md = build(_spec(), _store(tmp_path)).markdown
    noop, acts, base = _row(md, "noop"), _row(md, "acts"), _row(md, "base")
    assert FLAG in noop and "3/3 runs" in noop and "0.02 %" in noop
    assert FLAG not in acts and "active (median share 20 %)" in acts
    assert FLAG not in base and base.split("|")[-2].strip() == "—"  # no regulariser, no health
    assert EXPLANATION in md
    assert FLAG in _row(md, "noop", "## Overall")
    assert FLAG not in _row(md, "acts", "## Overall")


def test_results_without_health_render_as_unknown_not_healthy(tmp_path):
    md = build(_spec(), _store(tmp_path, with_health=False)).markdown
    for method in ("noop", "acts"):
        row = _row(md, method)
        assert "health unknown" in row and FLAG not in row and "active" not in row
    assert EXPLANATION not in md


def test_committed_cpu_repro_results_render_with_health_unknown():
    """The v1 results predate health; the study's grids changed since, so use v1's own spec."""
    import json

    from gmgbench.harness.leaderboard import spec_from_dict
    from gmgbench.harness.results import ResultsStore

    manifest = json.loads((REPO / "leaderboards" / "cpu-repro" / "v1" / "manifest.json").read_text())
    spec = spec_from_dict(manifest["spec"])
    md = build(spec, ResultsStore(REPO / "results" / "cpu-repro")).markdown
    row = _row(md, "beta_vae+gmg_cos_dec", "## dsprites_procedural")
    assert "health unknown" in row and FLAG not in row and "active" not in row
    assert _row(md, "beta_vae", "## dsprites_procedural").split("|")[-2].strip() == "—"


def test_release_from_before_health_rebuilds_byte_for_byte():
    ok, report = verify(REPO / "leaderboards" / "cpu-repro" / "v1")
    assert ok, report


def test_health_figure_draws_each_run_and_curves_keep_a_zero_term_visible(tmp_path):
    from gmgbench.harness.leaderboard import figures

    store = _store(tmp_path)
    agg = build(_spec(), store).agg
    healths = {}
    for rid in agg.runs["run_id"]:
        h = store.read_result(rid).get("health")
        if h:
            h["terms"]["gmg"]["series"] = [[0, 0.0], [50, 2e-4], [100, 0.3]]
            healths[rid] = h
    rec = figures.health_figure(agg, "ds_a", healths, tmp_path / "fig")
    assert rec["kind"] == "health" and (tmp_path / "fig" / "ds_a-health.png").stat().st_size > 0
    assert figures.health_figure(agg, "ds_a", {}, tmp_path / "none") is None  # no record, no figure

    ax = figures._figure(3, 2).add_subplot(1, 1, 1)
    figures._scale(ax, [0.0, 1e-3, -2e-3, 50.0])  # a clipped/plain GMG next to its early values
    assert ax.get_yscale() == "symlog"
    ax = figures._figure(3, 2).add_subplot(1, 1, 1)
    figures._scale(ax, [1.0, 500.0])
    assert ax.get_yscale() == "log"
