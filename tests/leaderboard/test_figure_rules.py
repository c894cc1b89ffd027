"""What the figures show: labels never share a file, base loss apart from λ·R, readable symlog
ticks, the tables' seeds (selection seeds marked apart), ordering as captioned, the claims'
forest plot."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from gmgbench.harness import leaderboard
from gmgbench.harness.leaderboard import figures
from gmgbench.harness.leaderboard.figures import _board_entries, _figure, _scale, slug, split_loss, training_curves
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec, RegulariserSpec
from lb_helpers import fill, make_spec

HELD_OUT = {"metric": "dci.disentanglement", "seeds": [0, 1]}


def test_labels_that_differ_only_in_replaced_characters_get_different_files():
    assert slug("α-VAE") != slug("β-VAE")
    assert slug("beta_vae+gmg") != slug("beta_vae_gmg")  # one had a '+' replaced
    assert slug("dsprites_procedural") == "dsprites_procedural"  # safe names stay as they are


def test_split_loss_separates_the_base_objective_from_lambda_r():
    curve = [{"step": 1, "loss": 100.0, "recon": 90.0, "kl": 5.0, "gmg": -0.01, "gmg.dst": 0.03}]
    (p,) = split_loss(curve, {"gmg": 3000.0})
    assert p["λ·R"] == pytest.approx(-30.0) and p["base loss"] == pytest.approx(130.0)
    assert p["base loss"] + p["λ·R"] == pytest.approx(p["loss"])
    (q,) = split_loss(curve, {})  # no regulariser: the base loss is the loss, no λ·R panel
    assert q["base loss"] == 100.0 and "λ·R" not in q
    (r,) = split_loss(curve, {"gmg": None})  # weight not recorded: left unsplit
    assert "base loss" not in r


def test_symlog_ticks_are_few_distinct_and_clear_of_zero():
    fig = _figure(4, 3)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1, 2, 3], [40.0, -3.0, 2e-4, -1e-3])
    _scale(ax, [40.0, -3.0, 2e-4, -1e-3])
    assert ax.get_yscale() == "symlog"
    ticks = list(ax.get_yticks())
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert 0.0 in ticks and len(ticks) <= 9 and len(set(labels)) == len(labels)
    linthresh = ax.yaxis.get_transform().linthresh
    # No tick inside the linear band but 0: labels there sit on top of "0".
    assert all(t == 0 or abs(t) > linthresh for t in ticks)


def _held_out_board(tmp_path):
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1, 2, 3, 4), leaderboard={"selection": HELD_OUT},
                     methods=(MethodSpec("low", "beta_vae", {"beta": 1.0}), MethodSpec("high", "beta_vae", {"beta": 2.0}),
                              MethodSpec("mid", "beta_vae", {"beta": 3.0})))
    level = {"low": 0.1, "mid": 0.3, "high": 0.5}
    store = fill(ResultsStore(tmp_path / "r"), spec,
                 lambda run: {"dci.disentanglement": level[run.method] + 0.01 * run.seed})
    return leaderboard.build(spec, store).agg, store


def test_the_selection_figure_is_ordered_as_captioned_and_marks_selection_seeds(tmp_path):
    agg, _ = _held_out_board(tmp_path)
    assert [e for e, _ in _board_entries(agg, "ds_a")] == ["high", "mid", "low"]  # best mean first (on top)
    rec = figures.selection_chart(agg, "ds_a", tmp_path / "f")
    assert "best mean on top" in rec["caption"] and "judged seeds 2, 3, 4" in rec["caption"]
    assert "hollow: the selection seeds (0, 1)" in rec["caption"]


def test_curves_use_the_judged_seeds_only(tmp_path):
    agg, store = _held_out_board(tmp_path)
    runs = agg.runs
    curve = [{"step": s, "loss": 10.0 / s, "recon": 8.0 / s, "kl": 1.0} for s in (1, 2, 3)]
    chose = {rid: curve for rid, seed in zip(runs["run_id"], runs["seed"]) if seed in (0, 1)}
    assert training_curves(agg, "ds_a", chose, tmp_path / "f") is None  # selection seeds are not drawn
    rec = training_curves(agg, "ds_a", {**chose, **{r: curve for r in runs["run_id"]}}, tmp_path / "f")
    assert "judged seeds 2, 3, 4" in rec["caption"] and "base loss and λ·R in separate panels" in rec["caption"]


def test_a_release_with_paired_claims_has_a_forest_plot_linked_under_the_claims(tmp_path):
    spec = make_spec(datasets=("ds_a",), seeds=(0, 1, 2, 3),
                     methods=(MethodSpec("a", "beta_vae", {"beta": 1.0}), MethodSpec("b", "beta_vae", {"beta": 2.0})),
                     leaderboard={"claims": [{"claim": "a beats b", "better": "a", "than": "b"}]})
    noise = (0.0, 0.03, -0.02, 0.01)
    store = fill(ResultsStore(tmp_path / "r"), spec,
                 lambda run: {"dci.disentanglement": (0.3 if run.method == "a" else 0.2) + noise[run.seed]
                              + (0.005 * run.seed if run.method == "a" else 0.0)})
    v1 = leaderboard.publish(spec, store, root=tmp_path / "lb")
    m = json.loads((v1 / "manifest.json").read_text())
    forest = [f for f in m["figures"] if f["kind"] == "claims"]
    assert len(forest) == 1 and (v1 / forest[0]["path"]).is_file()
    md = (v1 / "leaderboard.md").read_text()
    assert md.index("## Claims") < md.index(f"]({forest[0]['path']})") < md.index("## Overall")
    img = np.asarray(Image.open(v1 / forest[0]["path"]).convert("L"), float)
    assert img.std() > 1.0
    assert leaderboard.verify(v1)[0]


def test_short_labels_keep_the_varying_values_whole(tmp_path):
    spec = make_spec(datasets=("ds_a",), leaderboard={"all_settings": True}, methods=(
        MethodSpec("dst", "beta_vae", {"beta": 4.0}, (RegulariserSpec("dst", {"weight": [300.0, 3000.0]}),)),))
    store = fill(ResultsStore(tmp_path / "r"), spec, lambda run: {"dci.disentanglement": 0.1 + 0.01 * run.seed})
    agg = leaderboard.build(spec, store).agg
    labels = sorted(figures.short_label(agg, e, r) for e, r in _board_entries(agg, "ds_a"))
    assert labels == ["dst [weight=300.0]", "dst [weight=3000.0]"]
