"""Every bad spec of issue 16 fails when the spec loads, with one line naming the file and
the key — nothing trains first; the typed tree builds each method's Config once; and the
refactor changed no run id (pinned below)."""
from __future__ import annotations

import yaml
import pytest

from gmgbench.harness.cli import main
from gmgbench.harness.spec import SpecError, load_spec, spec_hash


def _with_dci(s):
    s["evaluation"]["metrics"]["dci"] = {"num_train": 64, "num_test": 32}


CASES = {
    "seeds as text": (lambda s: s.update(seeds="3"), "seeds", "expected a number of seeds n"),
    "a fractional seed count": (lambda s: s.update(seeds=2.5), "seeds", "got 2.5"),
    "a bool seed count": (lambda s: s.update(seeds=True), "seeds", "got True"),
    "a seed listed as text": (lambda s: s.update(seeds=[0, "1"]), "seeds[1]", "expected an integer ≥ 0, got '1'"),
    "an empty grid": (lambda s: s["methods"][0]["params"].update(beta=[]), "methods[0].params.beta",
                      "an empty grid"),
    "fractional steps": (lambda s: s["train"].update(steps=35.5), "train.steps",
                         "expected a positive integer, got 35.5"),
    "bool steps": (lambda s: s["train"].update(steps=True), "train.steps", "expected a positive integer, got True"),
    "a selection typo": (lambda s: (_with_dci(s), s["leaderboard"].update(selection="dci.disentanglment")),
                         "leaderboard.selection", "(did you mean 'dci.disentanglement'?)"),
    "no DCI but the default selection": (lambda s: s.pop("leaderboard"), "leaderboard.selection",
                                         "'dci.disentanglement' (the default; set leaderboard.selection) is not computed"),
    "a negative regulariser weight": (
        lambda s: s["methods"][0].update(regularisers=[{"name": "gmg", "params": {"weight": [1.0, -2.0]}}]),
        "methods[0].regularisers[0].params.weight", "a negative weight (-2.0)"),
    "lr as a word": (lambda s: s["train"].update(lr="fast"), "train.lr", "expected a positive number, got 'fast'"),
    "a negative lr": (lambda s: s["train"].update(lr=-0.001), "train.lr", "expected a positive number, got -0.001"),
    "lr written 1e-4": (lambda s: s["train"].update(lr="1e-4"), "train.lr", "YAML reads 1e-4 as text"),
    "a method's lr as a word": (lambda s: s["methods"][0].update(train={"lr": "fast"}), "methods[0].train.lr",
                                "expected a positive number"),
    "a negative metric size": (lambda s: s["evaluation"]["metrics"]["mig"].update(num_train=-5),
                               "evaluation.metrics.mig.num_train", "expected a positive integer, got -5"),
    "train as a list": (lambda s: s.update(train=[1, 2]), "train", "expected a mapping of training settings"),
    "params as a list": (lambda s: s["methods"][0].update(params=[1, 2]), "methods[0].params",
                         "expected a mapping of objective parameters"),
    "a method parameter as text": (lambda s: s["methods"][0]["params"].update(beta="4"), "methods[0].params.beta",
                                   "expected a number, got '4'"),
    "evaluation.batch_size": (lambda s: s["evaluation"].update(batch_size=16), "evaluation.batch_size",
                              "each metric has one"),
    "a claim about a missing entry": (
        lambda s: s["leaderboard"].update(claims=[{"claim": "x", "better": "bvae", "than": "gone"}]),
        "leaderboard.claims[0].than", "not a method label"),
    "an objective typo": (lambda s: s["methods"][0].update(objective="beta_vea"), "methods[0].objective",
                          "unknown objective 'beta_vea' (did you mean 'beta_vae'?); valid objectives: "),
    "a regulariser typo": (lambda s: s["methods"][0].update(regularisers=["gmgg"]), "methods[0].regularisers[0]",
                           "unknown regulariser 'gmgg' (did you mean 'gmg'?)"),
    "resources as a list": (lambda s: s.update(resources=["gpu"]), "resources", "expected a mapping"),
    "a resources typo": (lambda s: s.update(resources={"timeout_mins": 5}), "resources.timeout_mins",
                         "(did you mean 'timeout_min'?)"),
    # issue 27: refused at load, not at step 0 / after training everything
    "beta: inf": (lambda s: s["methods"][0]["params"].update(beta=float("inf")), "methods[0].params.beta",
                  "inf is not a finite number"),
    "beta: nan in a grid": (lambda s: s["methods"][0]["params"].update(beta=[1.0, float("nan")]),
                            "methods[0].params.beta", "nan is not a finite number"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_spec_is_one_line_at_load(write_spec, tiny_spec, case):
    mutate, key, needle = CASES[case]
    mutate(tiny_spec)
    path = write_spec(tiny_spec)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and f": {key}: " in msg and needle in msg, msg


@pytest.mark.parametrize("case", ["fractional steps", "no DCI but the default selection", "a negative metric size",
                                  "beta: inf"])
def test_nothing_trains_before_the_error(write_spec, tiny_spec, tmp_path, capsys, case):
    CASES[case][0](tiny_spec)
    results = tmp_path / "results"
    assert main(["run", str(write_spec(tiny_spec)), "--results", str(results)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and CASES[case][1] in err
    assert not results.exists()


def test_method_configs_are_built_once_at_load(write_spec, tiny_spec, monkeypatch):
    from gmgbench.harness import train
    from gmgbench.methods import registry

    calls = []
    real = registry.make_config
    monkeypatch.setattr(registry, "make_config", lambda cls, p: calls.append(p) or real(cls, p))
    tiny_spec["methods"][0]["regularisers"] = [{"name": "gmg", "params": {"weight": [1.0, 10.0]}}]
    spec = load_spec(write_spec(tiny_spec))
    runs = spec.runs()
    for run in runs:
        train.method_config(run)
        train._build_terms(run)
    assert len(calls) == 2 + 2  # the objective's two grid points, gmg's two; not once per run
    assert runs[0].method_configs()[1][0].weight == 1.0


PINNED = {
    "name": "pinned", "datasets": ["dsprites_procedural", "shapes3d_procedural"],
    "methods": [{"label": "bvae", "objective": "beta_vae", "params": {"beta": [1.0, 4]}},
                {"objective": "beta_vae", "params": {"beta": 2.0},
                 "regularisers": [{"name": "gmg", "params": {"weight": [1.0, 10.0], "cost": "cos"}}]}],
    "seeds": [0, 3], "train": {"steps": 1000, "batch_size": 32, "lr": 0.0005, "log_every": 10},
    "evaluation": {"metrics": {"mig": {"num_train": 500}, "dci": None}, "seed": 1},
}


def test_run_ids_and_spec_hash_are_pinned(tmp_path):
    """Values computed before the typed spec tree (issue 16) and unchanged by it: results
    stores and releases made before still match. Change them only with a reason."""
    path = tmp_path / "pinned.yaml"
    path.write_text(yaml.safe_dump(PINNED))
    spec = load_spec(path)
    runs = spec.runs()
    assert len(runs) == 16
    assert [(r.name, r.run_id) for r in runs[::5]] == [
        ("bvae[beta=1.0]@dsprites_procedural/seed=0", "b820b41f3ea77c07"),
        ("beta_vae+gmg[beta=2.0,gmg.cost=cos,gmg.weight=1.0]@dsprites_procedural/seed=3", "b20a79dc27d1a3f3"),
        ("bvae[beta=4]@shapes3d_procedural/seed=0", "9856e237684cb208"),
        ("beta_vae+gmg[beta=2.0,gmg.cost=cos,gmg.weight=10.0]@shapes3d_procedural/seed=3", "ba1241cf4395a55f"),
    ]
    assert spec_hash(spec) == "77ed5febe4591eea2f7b6847d035ba4d6057d2c943a43d66b93e543676a4c663"


def test_a_key_given_twice_is_one_line_naming_it(tmp_path, tiny_spec, capsys):
    """YAML keeps the last of two equal keys without a word: the first train block vanished."""
    text = yaml.safe_dump(tiny_spec, sort_keys=False) + "train: {steps: 1}\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    line = 1 + text.splitlines().index("train:")
    with pytest.raises(SpecError, match=rf"^{path}: line {text.count(chr(10))}: key 'train' is given twice "
                                        rf"\(also on line {line}\); keep one$"):
        load_spec(path)
    nested = tmp_path / "nested.yaml"
    nested.write_text(text.replace("train: {steps: 1}\n", "").replace("  steps: 4\n", "  steps: 4\n  steps: 40\n"))
    assert main(["status", str(nested)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{nested}: line " in err and "key 'steps' is given twice" in err
