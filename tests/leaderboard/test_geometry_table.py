"""The board's held-out geometry table: the relative gap per side and cost, from the judged seeds,
and how many runs had collapsed codes (their gap is NaN and not averaged)."""
from __future__ import annotations

import math

from gmgbench.harness import leaderboard
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec, RegulariserSpec
from lb_helpers import make_spec, result

# Per method, per seed: (dec_cos_gmg_rel, dec_ccos_gmg_rel, collapsed).
GEOMETRY = {
    "base": [(0.30, 0.20, 0), (0.50, 0.40, 0), (0.40, 0.30, 0)],
    "gmg": [(0.10, 0.05, 0), (math.nan, math.nan, 1), (0.20, 0.15, 0)],
}


def _board(tmp_path, with_geometry=True):
    spec = make_spec(datasets=("ds_a",), methods=(
        MethodSpec("base", "beta_vae", {"beta": 1.0}),
        MethodSpec("gmg", "beta_vae", {"beta": 1.0}, (RegulariserSpec("gmg", {"weight": 1e5}),)),
    ))
    store = ResultsStore(tmp_path / "results")
    for run in spec.runs():
        values = {"dci.disentanglement": 0.1 * (run.seed + 1), "mig.discrete_mig": 0.1}
        if with_geometry:
            cos, ccos, collapsed = GEOMETRY[run.method][run.seed]
            values.update({"geometry.dec_cos_gmg_rel": cos, "geometry.dec_ccos_gmg_rel": ccos,
                           "geometry.dec_cos_dst": 0.5, "geometry.collapsed": float(collapsed)})
        store.write_result(run.run_id, result(run, values))
    return leaderboard.build(spec, store).markdown


def _row(md: str, method: str) -> list[str]:
    part = md[md.index("**Held-out geometry on ds_a**"):]
    line = next(x for x in part.splitlines() if x.startswith(f"| {method} "))
    return [c.strip() for c in line.strip("|").split("|")]


def test_the_board_shows_the_relative_gap_and_counts_collapsed_runs(tmp_path):
    md = _board(tmp_path)
    header = next(x for x in md[md.index("**Held-out geometry"):].splitlines() if x.startswith("| Method"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["Method", "dec cos GMG/DST", "dec ccos GMG/DST",
                                                                 "Collapsed"]
    assert _row(md, "base") == ["base", "0.400 ± 0.100 (3)", "0.300 ± 0.100 (3)", "0/3"]
    # The collapsed run's NaN gap is left out of the mean, and counted.
    assert _row(md, "gmg") == ["gmg", "0.150 ± 0.071 (2)", "0.100 ± 0.071 (2)", "1/3"]


def test_results_without_geometry_get_no_table(tmp_path):
    assert "Held-out geometry" not in _board(tmp_path, with_geometry=False)


def test_the_board_names_gmgs_training_estimator(tmp_path):
    """Text 4: a board with GMG entries says their training term is the paper's entropic
    estimate (the default), not the gap; a board without GMG says nothing of it."""
    md = _board(tmp_path)
    line = next(x for x in md.splitlines() if x.startswith("- **GMG's training term**"))
    assert "`plain`, the paper's entropic estimate DST − GW_ε, not the Gromov-Monge gap itself." in line
    spec = make_spec(datasets=("ds_a",), methods=(MethodSpec("base", "beta_vae", {"beta": 1.0}),))
    store = ResultsStore(tmp_path / "plain")
    for run in spec.runs():
        store.write_result(run.run_id, result(run, {"dci.disentanglement": 0.1, "mig.discrete_mig": 0.1}))
    assert "GMG's training term" not in leaderboard.build(spec, store).markdown
