"""Releases: manifest, immutability, byte-for-byte rebuild, changelog, index, dlib export."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat

import pandas as pd
import pytest

from gmgbench.harness import leaderboard
from gmgbench.harness.leaderboard.aggregate import LeaderboardError
from gmgbench.harness.leaderboard.release import ReleaseExists
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import MethodSpec
from lb_helpers import DCI, fill, known_values, make_spec, toy_store

G = "beta=1.0,gmg.weight=10.0"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def released(tmp_path):
    spec, store = toy_store(tmp_path, skip={("ds_a", "alpha", "beta=1.0", 2)})
    root = tmp_path / "lb"
    v1 = leaderboard.publish(spec, store, root=root, figures=False, command="gmgbench leaderboard toy.yaml --publish")
    return spec, store, root, v1


def test_publish_writes_a_complete_release(released):
    spec, store, root, v1 = released
    assert v1 == root / "toy" / "v1"
    for f in ("leaderboard.md", "manifest.json", "changes.md", "data/runs.csv", "data/runs.parquet",
              "data/aggregate.csv", "data/aggregate.parquet", "data/ranks.csv", "data/ranks.parquet", "dlib/results.json"):
        assert (v1 / f).is_file(), f
    m = json.loads((v1 / "manifest.json").read_text())
    assert m["version"] == "v1" and m["study"] == "toy"
    assert m["spec_sha256"] == leaderboard.spec_hash(spec)
    assert m["spec"] == json.loads(json.dumps(leaderboard.spec_to_dict(spec)))
    assert m["build_command"] == "gmgbench leaderboard toy.yaml --publish"
    assert m["git_commit"] and "numpy" in m["packages"]
    # Every result file is listed with its SHA-256, which matches the file in the store.
    assert len(m["results"]) == 23
    for r in m["results"]:
        assert sha(store.root / r["file"]) == r["sha256"]
    for rel, digest in m["files"].items():
        assert sha(v1 / rel) == digest
    assert (root / "toy" / "LATEST").read_text() == "v1\n"
    md = (v1 / "leaderboard.md").read_text()
    assert md.startswith("# Leaderboard: toy (v1)") and "Not a release" not in md
    assert "gmgbench leaderboard --rebuild <this folder>` (e.g. `leaderboards/toy/v1`)" in md


def test_markdown_depends_only_on_the_manifest(released):
    """No clock or machine in the text: the creation time is in the manifest only."""
    _, _, _, v1 = released
    m = json.loads((v1 / "manifest.json").read_text())
    md = (v1 / "leaderboard.md").read_text()
    assert m["created_utc"] not in md and m["created_utc"][:10] not in md


def test_publishing_never_overwrites(released):
    spec, store, root, v1 = released
    before = {p: p.read_bytes() for p in v1.rglob("*") if p.is_file()}
    with pytest.raises(ReleaseExists, match=r"v1 already exists; published versions are never overwritten"):
        leaderboard.publish(spec, store, root=root, version=1, figures=False)
    assert before == {p: p.read_bytes() for p in v1.rglob("*") if p.is_file()}
    # Release files are read-only; the next publish is v2, leaving v1 untouched.
    assert not os.stat(v1 / "leaderboard.md").st_mode & stat.S_IWUSR
    v2 = leaderboard.publish(spec, store, root=root, figures=False)
    assert v2.name == "v2" and before == {p: p.read_bytes() for p in v1.rglob("*") if p.is_file()}
    assert not list((root / "toy").glob(".v*"))  # no partial folders left behind


def test_rebuild_reproduces_markdown_byte_for_byte(released, tmp_path):
    spec, store, root, v1 = released
    published = (v1 / "leaderboard.md").read_bytes()
    shutil.rmtree(store.root)  # the rebuild needs the release only
    assert leaderboard.rebuild(v1).encode() == published
    assert leaderboard.verify(v1) == (True, "")


def test_rebuild_of_an_all_settings_release(tmp_path):
    spec, store = toy_store(tmp_path, failed={("ds_b", "gamma", G, 1)})
    v1 = leaderboard.publish(spec, store, root=tmp_path / "lb", all_settings=True, figures=False)
    assert leaderboard.rebuild(v1) == (v1 / "leaderboard.md").read_text()


def test_rebuild_detects_edits(released):
    _, _, _, v1 = released
    md = v1 / "leaderboard.md"
    md.chmod(0o644)
    md.write_text(md.read_text().replace("0.600 ± 0.100 (3)", "0.700 ± 0.100 (3)", 1))
    same, diff = leaderboard.verify(v1)
    assert not same and "+| beta" in diff and "0.700 ± 0.100 (3)" in diff
    runs = v1 / "data" / "runs.parquet"
    runs.chmod(0o644)
    df = pd.read_parquet(runs)
    df.loc[0, "dci.disentanglement"] = 0.99
    df.to_parquet(runs, index=False)
    with pytest.raises(LeaderboardError, match=r"runs\.parquet: SHA-256 differs from manifest\.json"):
        leaderboard.rebuild(v1)


def test_rebuild_cli(released, capsys):
    from gmgbench.harness.cli import main

    _, _, _, v1 = released
    assert main(["leaderboard", "--rebuild", str(v1)]) == 0
    assert "identical" in capsys.readouterr().out
    assert main(["leaderboard", "--rebuild", str(v1.parent)]) == 1
    assert "no manifest" in capsys.readouterr().err


def test_changelog_reports_added_rows_moved_values_and_ranks(released):
    spec, store, root, v1 = released
    # v2: the missing run arrives, alpha's ds_b values drop far below their std, and a
    # new method joins.
    delta = MethodSpec("delta", "other", {"beta": 1.0})
    spec2 = make_spec(methods=spec.methods + (delta,))

    def values(run):
        if run.method == "delta":
            return {"dci.disentanglement": 0.95, "dci.completeness": 0.1, "mig.discrete_mig": 0.5}
        v = known_values(run)
        if run.method == "alpha" and run.dataset == "ds_b":
            v["dci.disentanglement"] -= 0.5  # mean 0.8 -> 0.3, std 0.1
        return v

    store2 = ResultsStore(store.root.parent / "results2")
    fill(store2, spec2, values)
    v2 = leaderboard.publish(spec2, store2, root=root, figures=False)
    text = (v2 / "changes.md").read_text()
    assert text.startswith("## v2 (")
    assert "Compared with v1." in text
    assert "The study spec changed" in text
    assert "Rows added: ds_a / delta; ds_b / delta." in text
    assert "ds_a / alpha: 2/3 → 3/3 done" in text
    assert "ds_b / alpha / dci.disentanglement: 0.800 ± 0.100 (3) → 0.300 ± 0.100 (3) (-0.500)" in text
    # alpha's ds_a mean moves 0.15 -> 0.2, within its std (0.071 / 0.1): not reported.
    assert "ds_a / alpha / dci.disentanglement" not in text
    # v1's alpha had 2 judged seeds on ds_a, too few to rank; v2 ranks it.
    assert "Average ranks changed:" in text and "alpha: — → 4.00" in text
    changelog = (root / "toy" / "CHANGELOG.md").read_text()
    assert changelog.index("## v2") < changelog.index("## v1")
    assert "First release: 6 rows over 2 dataset(s); 24 runs expected (23 done, 0 failed, 1 missing)." in changelog


def test_unchanged_republish_says_so(released):
    spec, store, root, _ = released
    v2 = leaderboard.publish(spec, store, root=root, figures=False)
    assert "No change in rows" in (v2 / "changes.md").read_text()


def test_index_lists_every_study(released, tmp_path):
    spec, store, root, _ = released
    other = make_spec(name="other", datasets=("ds_a",))
    s2 = ResultsStore(tmp_path / "r_other")
    fill(s2, other, known_values)
    leaderboard.publish(other, s2, root=root, figures=False)
    index = (root / "README.md").read_text()
    assert "[toy](toy/v1/leaderboard.md)" in index and "[other](other/v1/leaderboard.md)" in index
    assert "23/24" in index and "12/12" in index
    # other (ds_a only): beta has the best mean (0.6), but its seeds overlap gamma's (0.4, 0.4, 0.7),
    # so the bootstrap intervals of rank 1 and rank 2 overlap: no leader is named.
    row = next(x for x in index.splitlines() if x.startswith("| [other]"))
    assert "no clear leader" in row and "beta (" not in row


def test_dlib_export_layout_and_aggregation(released):
    _, _, _, v1 = released
    files = sorted((v1 / "dlib").glob("*/metrics/mean/*/results/aggregate/evaluation.json"))
    assert len(files) == 23 * 2  # 23 finished runs × {dci, mig}
    d = json.loads(next(f for f in files if f.parts[-4] == "dci").read_text())
    for key in ("train_config.model.name", "train_config.model.random_seed", "train_config.dataset.name",
                "evaluation_config.evaluation.name", "evaluation_results.disentanglement",
                "evaluation_results.completeness", "evaluation_results.elapsed_time", "evaluation_results.uuid"):
        assert key in d, key
    assert d["evaluation_config.evaluation.name"] == "'dci'"
    assert d["train_config.dataset.name"] in ("'ds_a'", "'ds_b'")
    # dlib's load_aggregated_json_results is pd.read_json(orient="columns").
    df = pd.read_json(v1 / "dlib" / "results.json", orient="columns")
    assert len(df) == 46 and {"path", "train_config.model.name", "evaluation_results.discrete_mig"} <= set(df.columns)
    mig = df[df["evaluation_config.evaluation.name"] == "'mig'"]
    gamma_a = mig[(mig["train_config.model.name"] == "'gamma'") & (mig["train_config.dataset.name"] == "'ds_a'")]
    assert sorted(gamma_a["evaluation_results.discrete_mig"]) == pytest.approx([v / 2 for v in sorted(DCI[("ds_a", "gamma", 1.0)])])
    # The export is reproducible: uuids derive from the run and the metric.
    assert len(set(df["evaluation_results.uuid"])) == 46


def test_cli_publish_and_latest(tmp_path, capsys):
    """The CLI path end to end on a YAML spec with hand-written results."""
    from gmgbench.harness.cli import main
    from gmgbench.harness.spec import load_spec

    path = tmp_path / "clitest.yaml"
    path.write_text("name: clitest\ndatasets: [dsprites_procedural]\n"
                    "methods:\n  - {label: bvae, objective: beta_vae, params: {beta: [1.0, 4.0]}}\n"
                    "seeds: 2\nevaluation:\n  metrics: {mig: {}, dci: {}}\n")
    spec = load_spec(path)
    store = ResultsStore(tmp_path / "res")
    fill(store, spec, lambda run: {"dci.disentanglement": run.objective_params["beta"] / 10 + run.seed / 100,
                                   "mig.discrete_mig": 0.1})
    root = tmp_path / "lbcli"
    assert main(["leaderboard", str(path), "--results", str(store.root), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "beta=4.0 (best of 2)" in out and (root / "clitest" / "latest.md").is_file()
    assert main(["leaderboard", str(path), "--results", str(store.root), "--root", str(root), "--publish",
                 "--no-figures"]) == 0
    m = json.loads((root / "clitest" / "v1" / "manifest.json").read_text())
    assert m["build_command"].startswith(f"gmgbench leaderboard {path} --publish --results")
    assert m["spec_path"] == str(path)
    assert main(["leaderboard", "--rebuild", str(root / "clitest" / "v1")]) == 0


def test_explicit_version_fills_a_gap_without_moving_latest(released):
    spec, store, root, _ = released
    v3 = leaderboard.publish(spec, store, root=root, version=3, figures=False)
    assert (root / "toy" / "LATEST").read_text() == "v3\n"
    v2 = leaderboard.publish(spec, store, root=root, version=2, figures=False)
    assert (root / "toy" / "LATEST").read_text() == "v3\n"
    assert "Compared with v1." in (v2 / "changes.md").read_text()
    assert leaderboard.verify(v2)[0] and leaderboard.verify(v3)[0]


def test_changelog_across_selection_modes_does_not_compare_ranks(released):
    spec, store, root, _ = released
    v2 = leaderboard.publish(spec, store, root=root, all_settings=True, figures=False)
    text = (v2 / "changes.md").read_text()
    assert ("Selection changed: `dci.disentanglement`, selected and judged on the same seeds → "
            "`dci.disentanglement`, no selection (every setting shown)") in text
    assert "Rows added: ds_a / beta / beta=1.0; ds_b / beta / beta=4.0." in text
    assert "Ranks are not compared" in text and "Average ranks changed" not in text


def test_verify_checks_the_result_files_against_the_manifest(released, capsys):
    from gmgbench.harness.cli import main

    spec, store, root, v1 = released
    assert leaderboard.verify(v1, results=store.root) == (True, "")
    assert main(["leaderboard", "--rebuild", str(v1), "--results", str(store.root)]) == 0
    run = spec.runs()[0]
    path = store.result_path(run.run_id)
    path.write_text(path.read_text().replace('"status": "done"', '"status": "done" '))
    same, report = leaderboard.verify(v1, results=store.root)
    assert not same and f"{path}: SHA-256 differs from manifest.json" in report
    assert main(["leaderboard", "--rebuild", str(v1), "--results", str(store.root)]) == 1


def test_release_notes_head_the_changelog_entry_and_stay_in_the_manifest(released, tmp_path, capsys):
    """`--publish --notes FILE`: the publisher's why, above what the tables show changed."""
    from gmgbench.harness.cli import main

    spec, store, root, _ = released
    why = "Why: the regulariser was inert in v1; lambdas are calibrated now."
    v2 = leaderboard.publish(spec, store, root=root, figures=False, notes=why + "\n")
    entry = (v2 / "changes.md").read_text()
    assert entry.index(why) < entry.index("Compared with v1.")
    assert why in (root / "toy" / "CHANGELOG.md").read_text()
    assert json.loads((v2 / "manifest.json").read_text())["notes"] == why
    assert leaderboard.verify(v2)[0]
    # without --publish, or unreadable: one line, nothing written
    notes = tmp_path / "why.md"
    notes.write_text(why)
    assert main(["leaderboard", "study.yaml", "--root", str(root), "--notes", str(notes)]) == 2
    assert main(["leaderboard", "study.yaml", "--root", str(root), "--publish", "--notes", str(tmp_path / "no.md")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "--notes goes with --publish" in err[0] and "no.md: cannot read the release notes" in err[1]
    assert not (root / "toy" / "v3").exists()
