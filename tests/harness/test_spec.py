from __future__ import annotations

import pytest

from gmgbench.harness.spec import SpecError, load_spec


def test_expand_grid_seeds_and_stable_ids(write_spec, tiny_spec):
    runs = load_spec(write_spec(tiny_spec)).runs()
    assert len(runs) == 2 * 2  # beta grid × seeds
    assert {(r.objective_params["beta"], r.seed) for r in runs} == {(1.0, 0), (1.0, 1), (4.0, 0), (4.0, 1)}
    assert len({r.run_id for r in runs}) == 4
    again = load_spec(write_spec(tiny_spec, "again.yaml")).runs()
    assert [r.run_id for r in runs] == [r.run_id for r in again]


def test_run_id_ignores_bookkeeping_but_not_hyperparameters(write_spec, tiny_spec):
    base = {r.name: r.run_id for r in load_spec(write_spec(tiny_spec)).runs()}
    tiny_spec["train"]["log_every"] = 2
    tiny_spec["train"]["checkpoint_every"] = 1
    assert {r.name: r.run_id for r in load_spec(write_spec(tiny_spec, "b.yaml")).runs()} == base
    tiny_spec["train"]["lr"] = 0.01
    assert set({r.name: r.run_id for r in load_spec(write_spec(tiny_spec, "c.yaml")).runs()}.values()).isdisjoint(base.values())


def test_runspec_round_trips_through_dict(write_spec, tiny_spec):
    from gmgbench.harness.spec import RunSpec

    for run in load_spec(write_spec(tiny_spec)).runs():
        assert RunSpec.from_dict(run.to_dict()) == run
        assert RunSpec.from_dict(run.to_dict()).run_id == run.run_id


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda s: s.update(seedz=3), "seedz: unknown key (did you mean 'seeds'?)"),
        (lambda s: s["train"].update(stpes=3), "train.stpes: unknown key"),
        (lambda s: s["methods"][0].update(objective="beta_vea"), "unknown objective 'beta_vea' (did you mean 'beta_vae'?); valid objectives: "),
        (lambda s: s["methods"][0]["params"].update(betta=1), "methods[0].params.betta: unknown key (did you mean 'beta'?); valid keys: beta"),
        (lambda s: s["methods"][0]["params"].update(beta=-1.0), "beta must be >= 0"),
        (lambda s: s.update(datasets=["dsprites"]), "datasets[0]: unknown dataset 'dsprites' (did you mean"),
        (lambda s: s["evaluation"]["metrics"].update(mgi={}), "evaluation.metrics.mgi: unknown metric"),
        (lambda s: s["evaluation"]["metrics"]["mig"].update(num_trian=5), "evaluation.metrics.mig.num_trian: unknown key (did you mean 'num_train'?)"),
        (lambda s: s["methods"].append(dict(s["methods"][0])), "two methods are labelled 'bvae'"),
        (lambda s: s.pop("methods"), "methods: missing required key"),
        (lambda s: s["train"].update(steps=0), "train.steps: expected a positive integer, got 0"),
    ],
)
def test_errors_name_the_file_and_key(write_spec, tiny_spec, mutate, needle):
    mutate(tiny_spec)
    path = write_spec(tiny_spec)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert needle in str(err.value)


def test_regulariser_params_are_validated(write_spec, tiny_spec):
    tiny_spec["methods"][0]["regularisers"] = [{"name": "nope"}]
    with pytest.raises(SpecError, match="unknown regulariser 'nope'"):
        load_spec(write_spec(tiny_spec))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="study spec not found"):
        load_spec(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)
