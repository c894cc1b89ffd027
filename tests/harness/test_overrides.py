"""`--set key=value` and `--only ...`: the same runs, and run ids, as editing the spec."""
from __future__ import annotations

import copy
import json

import pytest

from gmgbench.harness import cli
from gmgbench.harness.spec import SpecError, load_spec


def _ids(spec) -> list[str]:
    return [r.run_id for r in spec.runs()]


@pytest.fixture
def two_method_spec(tiny_spec):
    spec = copy.deepcopy(tiny_spec)
    spec["datasets"] = ["dsprites_procedural", "shapes3d_procedural"]
    spec["methods"].append({"objective": "beta_vae", "params": {"beta": 2.0},
                            "regularisers": [{"name": "gmg", "params": {"weight": 1.0}}]})
    return spec


@pytest.mark.parametrize("edit, sets", [
    (lambda s: s["train"].update(steps=7), ["train.steps=7"]),
    (lambda s: s["train"].update(lr=3e-4), ["train.lr=3e-4"]),
    (lambda s: s["methods"][0]["params"].update(beta=[2.0, 8.0]), ["methods.0.params.beta=[2.0, 8.0]"]),
    (lambda s: s["methods"][1]["regularisers"][0]["params"].update(weight=3.0),
     ["methods.beta_vae+gmg.regularisers[0].params.weight=3.0"]),
    (lambda s: s["evaluation"]["metrics"]["mig"].update(num_train=32), ["evaluation.metrics.mig.num_train=32"]),
    (lambda s: s.update(seeds=[5, 6]), ["seeds=[5, 6]"]),
    (lambda s: s["methods"][0].update(train={"steps": 9}), ["methods.bvae.train.steps=9"]),  # a new section
])
def test_set_gives_the_run_ids_of_an_edited_spec(write_spec, two_method_spec, edit, sets):
    edited = copy.deepcopy(two_method_spec)
    edit(edited)
    by_file = load_spec(write_spec(edited, "edited.yaml"))
    by_set = load_spec(write_spec(two_method_spec, "original.yaml"), sets=sets)
    original = load_spec(write_spec(two_method_spec, "original.yaml"))
    assert _ids(by_set) == _ids(by_file)
    assert _ids(by_set) != _ids(original)  # the override did change something


def test_only_keeps_the_same_runs_of_the_full_study(write_spec, two_method_spec):
    path = write_spec(two_method_spec)
    full = load_spec(path).runs()
    some = load_spec(path, only=["dataset=shapes3d_procedural", "method=beta_vae+gmg", "seed=1"]).runs()
    expected = [r.run_id for r in full
                if r.dataset == "shapes3d_procedural" and r.method == "beta_vae+gmg" and r.seed == 1]
    assert [r.run_id for r in some] == expected and len(expected) == 1
    several = load_spec(path, only=["method=bvae,beta_vae+gmg", "seed=0"]).runs()
    assert {r.run_id for r in several} == {r.run_id for r in full if r.seed == 0}


@pytest.mark.parametrize("sets, only, message", [
    (["train.steps"], [], "--set train.steps: expected key=value"),
    (["train.steps=0"], [], "train.steps: expected a positive integer, got 0"),
    (["train.stpes=10"], [], "did you mean 'steps'"),
    (["methods.9.params.beta=1"], [], "index 9 is out of range"),
    (["methods.nope.params.beta=1"], [], "no entry 'nope'"),
    ([], ["seed=7"], "--only seed=7: not in the study; its seeds: 0, 1"),
    ([], ["method=vae"], "its methods: bvae, beta_vae+gmg"),
    ([], ["colour=red"], "expected one of dataset=..., method=..., seed=..."),
    # issue 27: a whole section is never reset silently, and a list without labels says what works
    (["train="], [], "--set train=: would replace the whole 'train' section (steps, batch_size"),
    (["train=5"], [], "set one of its keys instead, e.g. train.steps=VALUE"),
    (["methods.0.params="], [], "would replace the whole 'methods.0.params' section"),
])
def test_bad_overrides_are_one_clear_error(write_spec, two_method_spec, sets, only, message):
    with pytest.raises(SpecError, match=None) as err:
        load_spec(write_spec(two_method_spec), sets=sets, only=only)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_set_replaces_a_section_by_a_mapping_and_names_the_indices_of_an_unlabelled_list(write_spec, two_method_spec):
    spec = load_spec(write_spec(two_method_spec), sets=["evaluation.metrics={mig: {num_train: 32}}"])
    assert dict(spec.evaluation.metrics["mig"]) == {"num_train": 32}
    two_method_spec["seeds"] = [0, 1]
    with pytest.raises(SpecError, match="no entry 'x' in this list; use an index from 0 to 1 .its entries"):
        load_spec(write_spec(two_method_spec), sets=["seeds.x=1"])


def test_cli_status_honours_set_and_only(write_spec, two_method_spec, tmp_path, capsys):
    path = write_spec(two_method_spec)
    rc = cli.main(["status", str(path), "--results", str(tmp_path / "store"), "--json",
                   "--set", "train.steps=7", "--only", "seed=0", "dataset=dsprites_procedural"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    expected = load_spec(path, sets=["train.steps=7"], only=["seed=0", "dataset=dsprites_procedural"]).runs()
    assert [r["run_id"] for r in report["runs"]] == [r.run_id for r in expected]
    assert report["total"] == 3  # bvae's two betas and beta_vae+gmg, one seed, one dataset


def test_cli_reports_a_bad_override_in_one_line(write_spec, two_method_spec, tmp_path, capsys):
    rc = cli.main(["status", str(write_spec(two_method_spec)), "--results", str(tmp_path / "s"), "--set", "train.steps=oops"])
    assert rc == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--set train.steps=oops" in err


def test_only_methods_keeps_the_claims_between_kept_methods(write_spec, two_method_spec):
    two_method_spec["methods"].append({"label": "third", "objective": "beta_vae", "params": {"beta": 3.0}})
    two_method_spec["leaderboard"] = {"selection": "mig.discrete_mig", "claims": [
        {"claim": "gmg beats bvae", "better": "beta_vae+gmg", "than": "bvae"},
        {"claim": "third beats bvae", "better": "third", "than": "bvae"}]}
    path = write_spec(two_method_spec)
    spec = load_spec(path, only=["method=bvae,beta_vae+gmg"])
    assert [c.better for c in spec.leaderboard.options.claims] == ["beta_vae+gmg"]
    assert [c["better"] for c in spec.leaderboard.raw["claims"]] == ["beta_vae+gmg"]  # and the block as hashed
    assert [m.label for m in load_spec(path, only=["method=third"]).methods] == ["third"]


def test_project_folder_holds_results_and_leaderboards(write_spec, tiny_spec, tmp_path, monkeypatch):
    from gmgbench.harness import project
    from gmgbench.harness.executors import store_for
    from gmgbench.harness.leaderboard import leaderboards_root

    monkeypatch.setenv(project.ENV, "")  # setenv, not delenv: restored after cli.main sets it
    monkeypatch.setenv(project.LEADERBOARDS_ENV, "")
    monkeypatch.chdir(tmp_path)
    assert store_for("tiny").root == tmp_path / "results" / "tiny" and leaderboards_root() == tmp_path / "leaderboards"
    elsewhere = tmp_path / "proj"
    for argv in (["--project", str(elsewhere), "status"], ["status", "--project", str(elsewhere)]):
        monkeypatch.setenv(project.ENV, "")
        assert cli.main([*argv, str(write_spec(tiny_spec)), "--json"]) == 0
        assert store_for("tiny").root == elsewhere / "results" / "tiny"
        assert leaderboards_root() == elsewhere / "leaderboards"


@pytest.mark.parametrize("only, selection", [
    ("seed=0,1,2", {"metric": "mig.discrete_mig", "seeds": [0, 1]}),  # still held out
    ("seed=1,2", {"metric": "mig.discrete_mig", "seeds": [1]}),  # the subset's own selection seeds
    ("seed=0", "mig.discrete_mig"),  # nothing left to judge on: the preview selects and judges on seed 0
    ("seed=2,3", "mig.discrete_mig"),  # no selection seed in the subset
])
def test_only_seeds_keeps_held_out_selection_where_it_can(write_spec, two_method_spec, only, selection):
    """A long study is run a seed at a time (`--only seed=0`); held-out selection must not
    refuse the subset, and the runs it keeps are the full study's."""
    from gmgbench.harness.spec import spec_to_dict

    two_method_spec["seeds"] = 4
    two_method_spec["leaderboard"] = {"selection": {"metric": "mig.discrete_mig", "seeds": [0, 1]}}
    path = write_spec(two_method_spec)
    sub = load_spec(path, only=[only])
    assert spec_to_dict(sub)["leaderboard"]["selection"] == selection
    keep = {int(s) for s in only.split("=")[1].split(",")}
    assert _ids(sub) == [r.run_id for r in load_spec(path).runs() if r.seed in keep]
