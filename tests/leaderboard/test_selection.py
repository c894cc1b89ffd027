"""Selection protocols: select on some seeds and judge on the others, or (labelled) on the same ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from lb_helpers import fill, make_spec

from gmgbench.harness import leaderboard
from gmgbench.harness.leaderboard import LeaderboardError, Options
from gmgbench.harness.leaderboard.claims import judge
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec, SpecError, load_spec

REPO = Path(__file__).resolve().parents[2]
HELD_OUT = {"metric": "dci.disentanglement", "seeds": [0, 1]}

# Per (method, beta): dci.disentanglement on seeds 0..4. beta=1 shines on seeds 0 and 1 only,
# so selecting on them picks it, and the other seeds show what that choice is worth.
VALUES = {
    ("alpha", 1.0): [0.1, 0.1, 0.5, 0.5, 0.5],  # all: 0.34; judged (2-4): 0.5
    ("beta", 1.0): [0.9, 0.9, 0.2, 0.3, 0.4],   # all: 0.54; selection (0-1): 0.9; judged: 0.3
    ("beta", 4.0): [0.5, 0.5, 0.6, 0.7, 0.8],   # all: 0.62 (the same-seeds choice); selection: 0.5
    ("gamma", 1.0): [0.45, 0.45, 0.44, 0.45, 0.46],
}


def _values(run):
    return {"dci.disentanglement": VALUES[(run.method, run.objective_params["beta"])][run.seed]}


def _spec(selection, claims=(), **lb):
    methods = (MethodSpec("alpha", "vae", {"beta": 1.0}), MethodSpec("beta", "beta_vae", {"beta": [1.0, 4.0]}),
               MethodSpec("gamma", "beta_vae", {"beta": 1.0, "gamma": 2.0}))
    return make_spec(datasets=("ds_a",), seeds=(0, 1, 2, 3, 4), methods=methods,
                     leaderboard={"selection": selection, "claims": list(claims), **lb})


def _build(tmp_path, selection, **kw):
    spec = _spec(selection, **kw)
    store = fill(ResultsStore(tmp_path / "results"), spec, _values)
    return spec, store, leaderboard.build(spec, store)


def _shown(board, method):
    b = board.agg.board
    return b[b.method == method].iloc[0]


def test_held_out_selection_chooses_on_its_seeds_and_reports_the_others(tmp_path):
    _, _, board = _build(tmp_path, HELD_OUT)
    assert board.agg.selection_seeds == (0, 1) and board.agg.judged_seeds == (2, 3, 4)
    beta = _shown(board, "beta")
    assert beta["setting"] == "beta=1.0"
    assert beta["selection_score"] == pytest.approx(0.9) and beta["selection_n"] == 2
    assert beta["dci.disentanglement.mean"] == pytest.approx(0.3) and beta["dci.disentanglement.n"] == 3
    assert beta["dci.disentanglement.std"] == pytest.approx(0.1)
    assert (beta["expected"], beta["done"]) == (5, 5)  # run counts cover every seed
    other = board.agg.table[(board.agg.table.method == "beta") & ~board.agg.table.selected].iloc[0]
    assert other["selection_score"] == pytest.approx(0.5) and other["dci.disentanglement.mean"] == pytest.approx(0.7)
    # Ranks by the judged means: alpha 0.5 > gamma 0.45 > beta 0.3.
    ranks = dict(zip(board.agg.ranks.entry, board.agg.ranks.avg_rank))
    assert ranks == {"alpha": 1.0, "gamma": 2.0, "beta": 3.0}
    md = board.markdown
    assert "**Protocol: selected on held-out seeds**" in md
    assert "over seeds 0, 1 (ties: the first setting in the spec)" in md
    assert "comes from the other seeds (2, 3, 4)" in md
    assert "0.300 ± 0.100 (3)" in md and "beta=1.0 (best of 2)" in md


def test_string_selection_keeps_the_old_protocol_and_says_so(tmp_path):
    _, _, board = _build(tmp_path, "dci.disentanglement")
    assert board.agg.options.selection_seeds is None and board.agg.judged_seeds == (0, 1, 2, 3, 4)
    beta = _shown(board, "beta")
    assert beta["setting"] == "beta=4.0" and beta["dci.disentanglement.mean"] == pytest.approx(0.62)
    assert "selection_score" not in board.agg.table.columns
    assert "**Protocol: selected and judged on the same seeds** (0, 1, 2, 3, 4)" in board.markdown
    # A mapping without seeds is the same protocol.
    _, _, same = _build(tmp_path / "m", {"metric": "dci.disentanglement"})
    assert same.markdown == board.markdown


def test_a_study_without_grids_says_nothing_is_chosen(tmp_path):
    spec = make_spec(methods=(MethodSpec("alpha", "vae", {"beta": 1.0}),), datasets=("ds_a",), seeds=(0, 1, 2, 3, 4))
    store = fill(ResultsStore(tmp_path / "r"), spec, _values)
    assert "every method has a single setting, so nothing is chosen" in leaderboard.build(spec, store).markdown


def test_claims_are_judged_on_the_held_out_seeds_only(tmp_path):
    claims = [{"claim": "beta beats alpha", "better": "beta", "than": "alpha"}]
    _, _, board = _build(tmp_path, HELD_OUT, claims=claims)
    (v,) = judge(board.agg)
    # Seeds 2-4: beta=1 (0.2, 0.3, 0.4) minus alpha (0.5, 0.5, 0.5) = −0.3, −0.2, −0.1.
    assert v.n_pairs == 3 and v.delta == pytest.approx(-0.2)
    assert "on the judged seeds (2, 3, 4)" in board.markdown


def test_held_out_release_rebuilds_and_records_its_protocol(tmp_path):
    spec, store, _ = _build(tmp_path, HELD_OUT, claims=[{"claim": "beta beats alpha", "better": "beta", "than": "alpha"}])
    root = tmp_path / "lb"
    v1 = leaderboard.publish(spec, store, root=root, figures=False)
    m = json.loads((v1 / "manifest.json").read_text())
    assert m["options"]["selection_seeds"] == [0, 1] and m["options"]["claims_test"] == "paired"
    assert m["options"]["claims_correction"] == "holm" and m["options"]["text_version"] == 4
    assert leaderboard.verify(v1) == (True, "")
    assert "`dci.disentanglement` on seeds 0, 1, judged on the others" in (root / "README.md").read_text()
    # v2 under the old protocol: the changelog names both protocols.
    spec2 = _spec("dci.disentanglement", claims=[{"claim": "beta beats alpha", "better": "beta", "than": "alpha"}],
                  claims_test="welch")
    v2 = leaderboard.publish(spec2, store, root=root, figures=False)
    changes = (v2 / "changes.md").read_text()
    assert ("Selection changed: `dci.disentanglement`, selected on held-out seeds (0, 1), judged on the others → "
            "`dci.disentanglement`, selected and judged on the same seeds") in changes
    assert ("Claims method changed: paired t-interval on per-seed differences, Holm-corrected across the board's "
            "comparisons → Welch's t-interval (unpaired), Holm-corrected") in changes
    assert "beta: `beta=1.0` → `beta=4.0`" in changes


def test_all_settings_judges_every_seed(tmp_path):
    _, _, board = _build(tmp_path, HELD_OUT, all_settings=True)
    assert board.agg.judged_seeds == (0, 1, 2, 3, 4) and board.agg.board["selected"].all()
    assert "on every seed (0, 1, 2, 3, 4)" in board.markdown


def test_options_of_an_old_release_mean_the_old_protocol():
    old = json.loads((REPO / "leaderboards" / "cpu-repro" / "v1" / "manifest.json").read_text())["options"]
    assert "claims_test" not in old
    o = Options.from_dict(old)
    assert (o.selection_seeds, o.claims_test, o.claims_correction, o.text_version) == (None, "welch", "none", 1)
    assert Options.from_dict(o.to_dict()) == o


def test_published_cpu_repro_v1_still_rebuilds_byte_for_byte():
    identical, diff = leaderboard.verify(REPO / "leaderboards" / "cpu-repro" / "v1")
    assert identical, diff


@pytest.mark.parametrize("selection, match", [
    ({"metric": "dci.disentanglement", "seeds": [0, 7]}, r"leaderboard\.selection\.seeds: seed 7 is not a seed of "
                                                         r"this study \(seeds: 0, 1, 2, 3, 4\)"),
    ({"metric": "dci.disentanglement", "seeds": [0, 1, 2, 3, 4]}, r"leaderboard\.selection\.seeds: selects on every "
                                                                  r"seed of the study .* leaving none to judge"),
    ({"metric": "dci.disentanglement", "seeds": []}, r"leaderboard\.selection\.seeds: expected a non-empty list"),
    ({"metric": "dci.disentanglement", "seeds": [0, 0]}, r"leaderboard\.selection\.seeds: seed 0 is listed twice"),
    ({"metric": "dci.disentanglement", "seeds": [True]}, r"leaderboard\.selection\.seeds: expected a non-empty list"),
    ({"metric": "dci.disentanglement", "seed": [0]}, r"leaderboard\.selection\.seed: unknown key"),
    ({"seeds": [0]}, r"leaderboard\.selection\.metric: expected '<metric>\.<key>'"),
    ({"metric": "sap.SAP_score", "seeds": [0]}, r"leaderboard\.selection\.metric: 'sap\.SAP_score' is not computed"),
    (["dci.disentanglement"], r"leaderboard\.selection: expected '<metric>\.<key>' or \{metric"),
])
def test_bad_selection_names_the_key(selection, match):
    with pytest.raises(LeaderboardError, match=match):
        Options.from_spec(_spec(selection))


def _write(tmp_path, leaderboard_block) -> Path:
    import yaml

    raw = {"name": "sel", "datasets": ["dsprites_procedural"], "seeds": 4,
           "methods": [{"label": "a", "objective": "beta_vae", "params": {"beta": [1.0, 4.0]}},
                       {"label": "b", "objective": "beta_vae", "params": {"beta": 2.0}}],
           "evaluation": {"metrics": {"dci": {}}}, "leaderboard": leaderboard_block}
    path = tmp_path / "sel.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("block, key", [
    ({"selection": {"metric": "dci.disentanglement", "seeds": [5]}}, "leaderboard.selection.seeds"),
    ({"selection": {"metric": "dci.disentanglement", "seeds": [0, 1, 2, 3]}}, "leaderboard.selection.seeds"),
    ({"claims_test": "bootstrap"}, "leaderboard.claims_test"),
    (["selection", "dci.disentanglement"], "leaderboard"),
])
def test_bad_leaderboard_keys_fail_at_spec_load_in_one_line(tmp_path, block, key):
    path = _write(tmp_path, block)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {key}:") and "\n" not in msg


def test_good_leaderboard_keys_load(tmp_path):
    spec = load_spec(_write(tmp_path, {"selection": HELD_OUT, "claims_test": "paired",
                                       "claims": [{"claim": "a beats b", "better": "a", "than": "b"}]}))
    assert spec.selection_metric == "dci.disentanglement"
    assert Options.from_spec(spec).judged_seeds(spec.seeds) == (2, 3)
