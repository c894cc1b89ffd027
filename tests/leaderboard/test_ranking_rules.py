"""A board ranks only what it can stand behind: inert entries, entries with too few judged seeds
and entries that lost seeds to failures are shown with their reason, never ranked or bold; a
rank interval needs three seeds; the index names a leader only when its interval is clear."""
from __future__ import annotations

import math

import pandas as pd

from gmgbench.harness import leaderboard
from gmgbench.harness.leaderboard.index import _leader
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec, RegulariserSpec
from lb_helpers import fill, make_spec, result


def _health(inert: bool) -> dict:
    share, below = (2e-4, 1.0) if inert else (0.2, 0.0)
    return {"every": 50, "terms": {"gmg": {"weight": 100.0, "inert": inert,
                                           "grad_share": {"median": share, "frac_below": below, "n": 40}}}}


# Per method, the seeds' values: "noop" is best by far but inert, so it must not rank first.
VALUES = {"base": (0.20, 0.22, 0.24), "noop": (0.90, 0.92, 0.94), "acts": (0.40, 0.42, 0.44)}


def _spec(**lb):
    return make_spec(datasets=("ds_a",), leaderboard=lb or None, methods=(
        MethodSpec("base", "beta_vae", {"beta": 1.0}),
        MethodSpec("noop", "beta_vae", {"beta": 1.0}, (RegulariserSpec("gmg", {"weight": 100.0}),)),
        MethodSpec("acts", "beta_vae", {"beta": 1.0}, (RegulariserSpec("gmg", {"weight": 1e5}),)),
    ))


def _board(tmp_path, spec=None, *, failed=(), inert=("noop",)):
    spec = spec or _spec()
    store = ResultsStore(tmp_path / "results")
    for run in spec.runs():
        if (run.method, run.seed) in failed:
            store.write_failure(run.run_id, {"run": run.to_dict(), "error": "FloatingPointError: loss is nan"})
            continue
        res = result(run, {"dci.disentanglement": VALUES[run.method][run.seed], "mig.discrete_mig": 0.1})
        if run.regularisers:
            res["health"] = _health(run.method in inert)
        store.write_result(run.run_id, res)
    return leaderboard.build(spec, store)


def _cells(md: str, method: str, section: str) -> list[str]:
    part = md[md.index(section):]
    line = next(x for x in part.splitlines() if x.startswith(f"| {method} "))
    return [c.strip() for c in line.strip("|").split("|")]


def test_an_inert_entry_is_shown_with_its_reason_but_not_ranked_or_bold(tmp_path):
    board = _board(tmp_path)
    r = board.agg.ranks.set_index("entry")
    assert math.isnan(r.loc["noop", "avg_rank"]) and r.loc["noop", "unranked"] == "inert"
    # The others rank among themselves: acts first, base second.
    assert (r.loc["acts", "avg_rank"], r.loc["base", "avg_rank"]) == (1.0, 2.0)
    md = board.markdown
    overall = _cells(md, "noop", "## Overall")
    assert overall[1] == "not ranked: inert" and overall[2] == "—"
    assert "**" not in overall[3]  # its 0.920 is the column's highest mean, yet not bold
    assert _cells(md, "acts", "## Overall")[3].startswith("**0.420")
    per_ds = _cells(md, "noop", "## ds_a")
    assert per_ds[2] == "not ranked: inert" and not any(c.startswith("**0.") for c in per_ds)
    assert "- **Ranking rules**: an entry is shown but **not ranked**" in md


def test_an_entry_with_fewer_judged_seeds_than_the_minimum_is_not_ranked(tmp_path):
    spec = _spec(min_seeds=4)
    board = _board(tmp_path, spec, inert=())
    r = board.agg.ranks
    assert r["avg_rank"].isna().all()
    assert set(r["unranked"]) == {"3 judged seeds (fewer than 4)"}
    assert "fewer than 4 judged seeds with a value (`leaderboard.min_seeds`)" in board.markdown
    # The default minimum is 3: the same results rank.
    assert _board(tmp_path / "b", inert=()).agg.ranks["avg_rank"].notna().all()


def test_an_entry_that_lost_a_judged_seed_to_a_failure_is_not_ranked(tmp_path):
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1, 2, 3), methods=_spec().methods)
    values = {m: v + (v[-1] + 0.02,) for m, v in VALUES.items()}
    store = ResultsStore(tmp_path / "results")
    fill(store, spec, lambda run: {"dci.disentanglement": values[run.method][run.seed]},
         failed={("ds_a", "acts", "beta=1.0,gmg.weight=100000.0", 1)})
    r = leaderboard.build(spec, store).agg.ranks.set_index("entry")
    # acts kept 3 seeds (the minimum), but the survivors are not the seeds the others are judged on.
    assert math.isnan(r.loc["acts", "avg_rank"]) and r.loc["acts", "unranked"] == "1 of 4 judged seeds failed"
    assert r.loc["noop", "avg_rank"] == 1.0 and r.loc["base", "avg_rank"] == 2.0


def test_a_rank_interval_needs_three_seeds(tmp_path):
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1), methods=_spec().methods, leaderboard={"min_seeds": 2})
    store = ResultsStore(tmp_path / "results")
    fill(store, spec, lambda run: {"dci.disentanglement": VALUES[run.method][run.seed]})
    board = leaderboard.build(spec, store)
    r = board.agg.ranks.set_index("entry")
    assert r.loc["noop", "avg_rank"] == 1.0  # ranked (min_seeds 2), but no interval from 2 seeds
    assert r["rank_lo"].isna().all() and set(r["interval"]) == {"too few seeds"}
    assert _cells(board.markdown, "noop", "## Overall")[2] == "too few seeds"


def test_two_seed_boards_rank_nothing_by_default(tmp_path):
    # The demo's shape: 2 seeds. Before the rules its inert GMG row was bold #1 with "[1.00, 1.00]".
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1), methods=_spec().methods)
    store = ResultsStore(tmp_path / "results")
    fill(store, spec, lambda run: {"dci.disentanglement": VALUES[run.method][run.seed]})
    board = leaderboard.build(spec, store)
    assert board.agg.ranks["avg_rank"].isna().all()
    assert "[1.00, 1.00]" not in board.markdown and "**1.00**" not in board.markdown
    assert _cells(board.markdown, "noop", "## Overall")[1] == "not ranked: 2 judged seeds (fewer than 3)"


def _ranks(*rows):
    return pd.DataFrame(rows, columns=["entry", "avg_rank", "rank_lo", "rank_hi"])


def test_the_index_names_a_leader_only_when_its_interval_is_clear_of_the_next():
    assert _leader(_ranks(("a", 1.0, 1.0, 1.5), ("b", 2.0, 2.0, 3.0))) == "a (1.00, [1.00, 1.50])"
    assert _leader(_ranks(("a", 1.0, 1.0, 2.0), ("b", 2.0, 1.5, 3.0))).startswith("no clear leader")
    # cpu-repro v2's index named beta_vae+dst_cos_dec, whose [1.00, 2.50] overlaps [1.50, 3.50].
    assert _leader(_ranks(("dst", 2.0, 1.0, 2.5), ("base", 2.5, 1.5, 3.5))).startswith("no clear leader")
    assert _leader(_ranks(("a", 1.0, math.nan, math.nan), ("b", 2.0, 2.0, 2.0))).startswith("no clear leader")
    assert _leader(_ranks()) == "— (nothing ranked)"


def test_a_newline_in_a_label_does_not_split_a_table_row(tmp_path):
    spec = make_spec(datasets=("ds_a",), methods=(MethodSpec("two\nlines", "beta_vae", {"beta": 1.0}),
                                                  MethodSpec("pipe|label", "beta_vae", {"beta": 2.0})))
    store = ResultsStore(tmp_path / "results")
    fill(store, spec, lambda run: {"dci.disentanglement": 0.1 + 0.1 * run.seed})
    md = leaderboard.build(spec, store).markdown
    assert "| two lines " in md and "| pipe\\|label " in md
    overall = md[md.index("## Overall"):md.index("## ds_a")].strip().splitlines()
    assert len(overall) == 6 and all(x.startswith("|") for x in overall[2:])  # title, blank, header, rule, 2 rows


def test_the_changelog_says_when_an_entry_stops_being_ranked(tmp_path):
    spec = _spec()
    store = ResultsStore(tmp_path / "results")
    for run in spec.runs():
        res = result(run, {"dci.disentanglement": VALUES[run.method][run.seed], "mig.discrete_mig": 0.1})
        if run.regularisers:
            res["health"] = _health(False)
        store.write_result(run.run_id, res)
    root = tmp_path / "lb"
    leaderboard.publish(spec, store, root=root, figures=False)
    for run in spec.runs():  # noop's runs turn out inert (e.g. health recorded by a later evaluation)
        if run.method == "noop":
            res = store.read_result(run.run_id)
            res["health"] = _health(True)
            store.write_result(run.run_id, res, overwrite=True)
    v2 = leaderboard.publish(spec, store, root=root, figures=False)
    assert "noop: 1.00 → not ranked (inert)" in (v2 / "changes.md").read_text()


def test_selection_stability_says_when_the_judged_seeds_would_choose_otherwise(tmp_path):
    # One method, two weights: the selection seeds (0, 1) favour weight 1, the judged seeds (2-4) weight 2.
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1, 2, 3, 4),
                     leaderboard={"selection": {"metric": "dci.disentanglement", "seeds": [0, 1]}},
                     methods=(MethodSpec("base", "beta_vae", {"beta": 1.0}),
                              MethodSpec("reg", "beta_vae", {"beta": 1.0},
                                         (RegulariserSpec("gmg", {"weight": [1.0, 2.0]}),))))

    def values(run):
        if run.method == "base":
            return {"dci.disentanglement": 0.1}
        w1 = "weight=1.0" in run.setting
        return {"dci.disentanglement": (0.5 if w1 else 0.4) if run.seed < 2 else (0.2 if w1 else 0.3) + 0.01 * run.seed}

    store = fill(ResultsStore(tmp_path / "results"), spec, values)
    md = leaderboard.build(spec, store).markdown
    section = md[md.index("## Selection stability"):md.index("## Overall")]
    assert "They agree in **0 of 1**" in section
    line = next(x for x in section.splitlines() if x.startswith("| ds_a "))
    row = [c.strip() for c in line.strip("|").split("|")]
    assert row[1] == "reg"
    assert row[2] == "gmg.weight=1.0" and row[3:5] == ["0.500", "0.230"]
    assert row[5] == "2nd of 2" and row[6] == "no: gmg.weight=2.0 (0.330)"
