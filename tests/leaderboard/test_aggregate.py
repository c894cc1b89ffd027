"""Aggregation, selection, ranks and markdown on hand-built results with known numbers."""
from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from gmgbench.harness import leaderboard
from gmgbench.harness.leaderboard.aggregate import LeaderboardError
from gmgbench.harness.results import ResultsStore
from lb_helpers import DCI, fill, make_spec, toy_store

G = "beta=1.0,gmg.weight=10.0"  # gamma's setting string


def row(board, ds, method):
    t = board.agg.table
    r = t[(t.dataset == ds) & (t.method == method) & t.selected]
    assert len(r) == 1
    return r.iloc[0]


def test_means_stds_and_counts_match_hand_computation(tmp_path):
    spec, store = toy_store(tmp_path)
    board = leaderboard.build(spec, store)
    for (ds, method, beta), vals in DCI.items():
        t = board.agg.table
        r = t[(t.dataset == ds) & (t.method == method) & (t.setting == f"beta={beta}" + (",gmg.weight=10.0" if method == "gamma" else ""))].iloc[0]
        assert r["dci.disentanglement.mean"] == pytest.approx(statistics.mean(vals))
        assert r["dci.disentanglement.std"] == pytest.approx(statistics.stdev(vals))
        assert r["dci.disentanglement.n"] == 3
        assert r["mig.discrete_mig.mean"] == pytest.approx(statistics.mean(vals) / 2)
        assert (r["expected"], r["done"], r["failed"], r["missing"]) == (3, 3, 0, 0)


def test_selection_picks_best_mean_setting_per_method_and_dataset(tmp_path):
    spec, store = toy_store(tmp_path)
    board = leaderboard.build(spec, store)
    assert row(board, "ds_a", "beta")["setting"] == "beta=4.0"  # 0.6 > 0.3
    assert row(board, "ds_b", "beta")["setting"] == "beta=1.0"  # 0.4 > 0.1
    assert row(board, "ds_a", "beta")["settings"] == 2
    assert len(board.agg.board) == 6
    md = board.markdown
    assert "the hyperparameter setting with the highest mean `dci.disentanglement` over seeds" in md
    assert "beta=4.0 (best of 2)" in md


def test_lower_is_better_selection_picks_the_smallest_mean(tmp_path):
    spec = make_spec(leaderboard={"selection": "dci.disentanglement", "lower_is_better": ["dci.disentanglement"]})
    spec, store = toy_store(tmp_path, spec)
    board = leaderboard.build(spec, store)
    assert row(board, "ds_a", "beta")["setting"] == "beta=1.0"
    assert row(board, "ds_b", "beta")["setting"] == "beta=4.0"
    assert "lowest mean" in board.markdown
    # ds_a: alpha has the lowest mean (0.2), so it ranks first and is bold.
    assert board.agg.ranks.set_index("entry").loc["alpha", "rank.ds_a"] == 1.0


def test_all_settings_shows_every_setting(tmp_path):
    spec, store = toy_store(tmp_path)
    board = leaderboard.build(spec, store, all_settings=True)
    assert len(board.agg.board) == 8
    entries = set(board.agg.ranks["entry"])
    assert {"beta [beta=1.0]", "beta [beta=4.0]", "alpha [beta=1.0]"} <= entries
    assert "none: every hyperparameter setting is its own row" in board.markdown


def test_ranks_per_dataset_and_average(tmp_path):
    spec, store = toy_store(tmp_path)
    ranks = leaderboard.build(spec, store).agg.ranks.set_index("entry")
    # ds_a means: alpha 0.2, beta 0.6, gamma 0.5; ds_b: alpha 0.8, beta 0.4, gamma 0.6.
    assert ranks["rank.ds_a"].to_dict() == {"alpha": 3.0, "beta": 1.0, "gamma": 2.0}
    assert ranks["rank.ds_b"].to_dict() == {"alpha": 1.0, "beta": 3.0, "gamma": 2.0}
    assert ranks["avg_rank"].to_dict() == {"alpha": 2.0, "beta": 2.0, "gamma": 2.0}
    assert (ranks["n_datasets"] == 2).all()


def test_ties_share_the_average_rank(tmp_path):
    spec = make_spec(datasets=("ds_a",))
    store = ResultsStore(tmp_path / "r")
    fill(store, spec, lambda run: {"dci.disentanglement": 0.5 if run.method != "alpha" else 0.1})
    ranks = leaderboard.build(spec, store).agg.ranks.set_index("entry")
    assert ranks.loc["beta", "rank.ds_a"] == ranks.loc["gamma", "rank.ds_a"] == 1.5
    assert ranks.loc["alpha", "rank.ds_a"] == 3.0


def test_bootstrap_interval_is_seeded_and_brackets_the_rank(tmp_path):
    spec, store = toy_store(tmp_path)
    a = leaderboard.build(spec, store).agg.ranks
    b = leaderboard.build(spec, store).agg.ranks
    pd.testing.assert_frame_equal(a, b)
    assert (a["rank_lo"] <= a["avg_rank"] + 1e-12).all() and (a["avg_rank"] <= a["rank_hi"] + 1e-12).all()
    r = a.set_index("entry")
    # alpha's seeds never reach the others' on ds_a (max 0.3 < 0.4) and always beat them on
    # ds_b (min 0.7 > 0.6): every resample ranks it 3 and 1, so its interval is the point 2.
    assert (r.loc["alpha", "rank_lo"], r.loc["alpha", "rank_hi"]) == (2.0, 2.0)
    # beta and gamma overlap on both datasets: their intervals have width.
    assert r.loc["beta", "rank_hi"] > r.loc["beta", "rank_lo"]
    # Another bootstrap seed is another (but still deterministic) resample.
    spec2 = make_spec(leaderboard={"bootstrap_seed": 7, "bootstrap": 200})
    c = leaderboard.build(spec2, store).agg.ranks
    pd.testing.assert_frame_equal(c, leaderboard.build(spec2, store).agg.ranks)


def test_bootstrap_resamples_seeds_by_hand(tmp_path):
    """Two methods, one dataset, three seeds each (the fewest a rank interval takes): the
    resampled means overlap, so the interval spans both ranks, and equal means share 1.5."""
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1, 2),
                     methods=make_spec().methods[:1] + make_spec().methods[2:],
                     leaderboard={"bootstrap": 4000})
    store = ResultsStore(tmp_path / "r")
    vals = {"alpha": (0.0, 0.5, 1.0), "gamma": (0.4, 0.5, 0.6)}
    fill(store, spec, lambda run: {"dci.disentanglement": vals[run.method][run.seed]})
    r = leaderboard.build(spec, store).agg.ranks.set_index("entry")
    # alpha's resampled mean is 0 with probability 1/27 and 1 with 1/27, either side of every
    # gamma mean (0.4..0.6): both ranks occur far above the 2.5 % tails.
    assert (r.loc["alpha", "rank_lo"], r.loc["alpha", "rank_hi"]) == (1.0, 2.0)
    assert r.loc["alpha", "avg_rank"] == r.loc["gamma", "avg_rank"] == 1.5  # both means 0.5


def test_failed_and_missing_runs_are_counted_per_cell(tmp_path):
    spec, store = toy_store(tmp_path, failed={("ds_b", "gamma", G, 2)}, skip={("ds_a", "alpha", "beta=1.0", 2)})
    board = leaderboard.build(spec, store)
    g, a = row(board, "ds_b", "gamma"), row(board, "ds_a", "alpha")
    assert (g["done"], g["failed"], g["missing"], g["dci.disentanglement.n"]) == (2, 1, 0, 2)
    assert (a["done"], a["failed"], a["missing"]) == (2, 0, 1)
    assert a["dci.disentanglement.mean"] == pytest.approx(0.15)
    md = board.markdown
    assert "0.600 ± 0.000 (2) · 1 failed" in md
    assert "0.150 ± 0.071 (2) · 1 missing" in md
    assert "2/3 (1 failed)" in md and "2/3 (1 missing)" in md
    assert "the spec expects 24 runs: 22 done, 1 failed, 1 missing" in md
    runs = board.agg.runs
    failed = runs[runs.status == "failed"].iloc[0]
    assert failed["error"].startswith("FloatingPointError") and failed["result_file"].startswith("failed/")


def test_results_outside_the_spec_are_ignored(tmp_path):
    spec, store = toy_store(tmp_path)
    smaller = make_spec(datasets=("ds_a",))
    board = leaderboard.build(smaller, store)
    assert set(board.agg.runs["dataset"]) == {"ds_a"} and len(board.agg.runs) == 12


def test_best_per_column_is_bold(tmp_path):
    spec, store = toy_store(tmp_path)
    md = leaderboard.build(spec, store).markdown
    ds_a = md.split("## ds_a")[1].split("## ds_b")[0]
    lines = {l.split("|")[1].strip(): l for l in ds_a.splitlines() if l.startswith("| ")}
    assert "**0.600 ± 0.100 (3)**" in lines["beta"]            # best dci.disentanglement
    assert "**0.800 ± 0.100 (3)**" in lines["alpha"]           # best dci.completeness (1 - 0.2)
    assert "**" not in lines["gamma"]
    overall = md.split("## Overall")[1].split("## ds_a")[0]
    assert overall.count("**") == 2 * (2 + 3)  # best per dataset column (2) + three tied avg ranks


def test_reference_column_and_difference(tmp_path):
    spec, store = toy_store(tmp_path)
    board = leaderboard.build(spec, store)
    g = row(board, "ds_a", "gamma")
    assert g["dci.disentanglement.reference"] == 0.45
    assert g["dci.disentanglement.delta"] == pytest.approx(0.05)
    ds_a = board.markdown.split("## ds_a")[1].split("## ds_b")[0]
    assert "Reference dci.disentanglement" in ds_a and "Δ dci.disentanglement" in ds_a
    gamma = next(l for l in ds_a.splitlines() if l.startswith("| gamma"))
    assert [c.strip() for c in gamma.strip("|").split("|")][-2:] == ["0.450", "+0.050"]
    assert "gamma: paper Table 1" in ds_a
    assert "Reference" not in board.markdown.split("## ds_b")[1]


def test_cell_format():
    from gmgbench.harness.leaderboard.render import cell

    assert cell(0.12345, 0.0312, 3, 3) == "0.123 ± 0.031 (3)"
    assert cell(0.5, math.nan, 1, 2) == "0.50 ± n/a (1)"
    assert cell(math.nan, math.nan, 0, 3) == "—"


def test_write_latest_says_not_a_release_and_writes_tables(tmp_path):
    spec, store = toy_store(tmp_path)
    board = leaderboard.build(spec, store)
    path = leaderboard.write_latest(board)
    assert path == tmp_path / "leaderboards" / "toy" / "latest.md"
    assert "Not a release" in path.read_text()
    for name in ("runs", "aggregate", "ranks"):
        csv = pd.read_csv(path.parent / "latest" / f"{name}.csv")
        pq = pd.read_parquet(path.parent / "latest" / f"{name}.parquet")
        assert len(csv) == len(pq) > 0
    runs = pd.read_parquet(path.parent / "latest" / "runs.parquet")
    assert len(runs) == 24 and set(runs.status) == {"done"}
    assert "dci.disentanglement" in runs.columns


@pytest.mark.parametrize("lb, match", [
    ({"selction": "dci.disentanglement"}, r"leaderboard\.selction: unknown key"),
    ({"selection": "sap.SAP_score"}, r"leaderboard\.selection: 'sap\.SAP_score' is not computed"),
    ({"selection": "dci"}, r"leaderboard\.selection: expected '<metric>\.<key>'"),
    ({"digits": "3"}, r"leaderboard\.digits: expected int"),
    ({"metrics": "dci.disentanglement"}, r"leaderboard\.metrics: expected a list"),
])
def test_bad_leaderboard_settings_name_the_key(tmp_path, lb, match):
    spec, store = toy_store(tmp_path)
    with pytest.raises(LeaderboardError, match=match):
        leaderboard.build(make_spec(leaderboard=lb), store)


def test_bad_reference_names_the_method_and_dataset(tmp_path):
    spec, store = toy_store(tmp_path)
    m = make_spec().methods
    bad = type(m[0])("alpha", "vae", {"beta": 1.0}, reference={"ds_z": {"dci.disentanglement": 1.0}})
    with pytest.raises(LeaderboardError, match=r"methods\[alpha\]\.reference\.ds_z: not a dataset"):
        leaderboard.build(make_spec(methods=(bad,) + m[1:]), store)


def test_unknown_metric_column_is_named(tmp_path):
    spec, store = toy_store(tmp_path)
    with pytest.raises(LeaderboardError, match=r"leaderboard\.metrics: 'mig\.nope' is in no result"):
        leaderboard.build(make_spec(leaderboard={"metrics": ["mig.nope"]}), store)


def test_metric_subset_and_order(tmp_path):
    spec, store = toy_store(tmp_path)
    board = leaderboard.build(make_spec(leaderboard={"metrics": ["mig.discrete_mig"]}), store)
    assert board.agg.metrics == ["dci.disentanglement", "mig.discrete_mig"]
    assert "dci.completeness" not in board.markdown


def test_no_results_yet_renders_dashes(tmp_path):
    spec = make_spec()
    board = leaderboard.build(spec, ResultsStore(tmp_path / "empty"))
    assert "0 done, 0 failed, 24 missing" in board.markdown
    assert np.isnan(board.agg.ranks["avg_rank"]).all()
