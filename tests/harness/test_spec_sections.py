"""The spec's evaluation, leaderboard and resources sections are typed and frozen at load,
and give back exactly the block as written (key absence and null settings included), so
the run ids and spec hashes computed from them did not change when they were typed."""
from __future__ import annotations

import dataclasses
import json
import pickle
from operator import delitem, setitem

import pytest

from gmgbench.harness.leaderboard.options import Claim, Options
from gmgbench.harness.spec import (EvaluationSpec, FrozenMap, LeaderboardSpec, RunSpec, load_spec, spec_from_dict, spec_hash,
                          spec_to_dict)

CLAIM = {"claim": "b beats a", "better": "b", "than": "a"}


@pytest.fixture
def spec_dict(tiny_spec):
    tiny_spec["methods"].append({"label": "b", "objective": "beta_vae", "params": {"beta": 2.0},
                                 "resources": {"mem_gb": 8, "slurm_additional_parameters": {"exclusive": True}}})
    tiny_spec["methods"][0]["label"] = "a"
    tiny_spec["evaluation"]["metrics"]["dci"] = None  # written as `dci:` (no settings): kept as null
    tiny_spec["resources"] = {"timeout_min": 30, "slurm_setup": ["module load x"]}
    tiny_spec["leaderboard"] = {"selection": "mig.discrete_mig", "digits": 2, "claims": [CLAIM]}
    return tiny_spec


def test_loaded_sections_are_typed(write_spec, spec_dict):
    spec = load_spec(write_spec(spec_dict))
    assert isinstance(spec.evaluation, EvaluationSpec) and isinstance(spec.leaderboard, LeaderboardSpec)
    assert spec.evaluation.seed == 0 and "seed" not in spec.evaluation.to_dict()  # the default, not written
    assert spec.evaluation.metrics == {"mig": {"num_train": 64, "batch_size": 16}, "dci": {}}
    assert spec.evaluation.settings() == {"mig": {"num_train": 64, "batch_size": 16}, "dci": {}}
    opts = spec.leaderboard.options
    assert isinstance(opts, Options) and opts.selection == "mig.discrete_mig" and opts.digits == 2
    assert opts.claims == (Claim("b beats a", "b", "a"),)
    assert Options.from_spec(spec) is opts  # checked once, at load, not again when the board is built
    assert Options.from_spec(spec, all_settings=True) == dataclasses.replace(opts, all_settings=True)
    assert spec.resources == {"timeout_min": 30, "slurm_setup": ["module load x"]}
    assert spec.methods[1].resources["mem_gb"] == 8
    run = next(r for r in spec.runs() if r.method == "b")
    assert run.evaluation.to_dict() == {"metrics": {"mig": {"num_train": 64, "batch_size": 16}, "dci": None},
                                        "seed": 0}
    assert run.resources.to_dict() == {"timeout_min": 30, "slurm_setup": ["module load x"], "mem_gb": 8,
                                       "slurm_additional_parameters": {"exclusive": True}}
    # `gmgbench status` parses without method checks, and still gets the checked options.
    assert load_spec(write_spec(spec_dict), check_methods=False).leaderboard.options == opts


def _assignments(spec):
    """(what, assignment, the error it must raise): setting a frozen dataclass's field raises
    FrozenInstanceError; a read-only mapping (or a list frozen as a tuple) has no item
    assignment at all, a TypeError."""
    run = spec.runs()[0]
    frozen, no_items = dataclasses.FrozenInstanceError, TypeError
    return [
        ("evaluation.seed", lambda: setattr(spec.evaluation, "seed", 3), frozen),
        ("evaluation.raw", lambda: setattr(spec.evaluation, "raw", {}), frozen),
        ("a metric", lambda: setitem(spec.evaluation.metrics, "sap", {}), no_items),
        ("a metric setting", lambda: setitem(spec.evaluation.metrics["mig"], "num_train", 1), no_items),
        ("a written metric setting", lambda: setitem(spec.evaluation.raw["metrics"]["mig"], "num_train", 1), no_items),
        ("leaderboard.options", lambda: setattr(spec.leaderboard, "options", None), frozen),
        ("leaderboard.options.digits", lambda: setattr(spec.leaderboard.options, "digits", 5), frozen),
        ("the written selection", lambda: setitem(spec.leaderboard.raw, "selection", "dci.disentanglement"), no_items),
        ("a written claim", lambda: setitem(spec.leaderboard.raw["claims"][0], "better", "a"), no_items),
        ("the written claims", lambda: setitem(spec.leaderboard.raw["claims"], 0, {}), no_items),
        ("the study's resources", lambda: setitem(spec.resources, "mem_gb", 1), no_items),
        ("a resource list", lambda: setitem(spec.resources["slurm_setup"], 0, "rm -rf"), no_items),
        ("a method's resources", lambda: delitem(spec.methods[1].resources, "mem_gb"), no_items),
        ("a nested resource", lambda: setitem(spec.methods[1].resources["slurm_additional_parameters"],
                                              "exclusive", False), no_items),
        ("the map's storage", lambda: setattr(spec.resources, "_data", {}), AttributeError),
        ("a run's evaluation", lambda: setattr(run, "evaluation", EvaluationSpec()), frozen),
        ("a run's resources", lambda: setitem(run.resources, "gpus_per_node", 1), no_items),
        ("the spec's section", lambda: setattr(spec, "leaderboard", LeaderboardSpec()), frozen),
    ]


def test_sections_are_frozen(write_spec, spec_dict):
    spec = load_spec(write_spec(spec_dict))
    before = spec_hash(spec), [r.run_id for r in spec.runs()], spec.runs()[-1].resources.to_dict()
    for what, assign, error in _assignments(spec):
        with pytest.raises(error):
            assign()
    assert (spec_hash(spec), [r.run_id for r in spec.runs()], spec.runs()[-1].resources.to_dict()) == before


def test_typed_sections_round_trip_exactly(write_spec, spec_dict):
    spec = load_spec(write_spec(spec_dict))
    d = spec_to_dict(spec)
    assert d["evaluation"] == spec_dict["evaluation"] and d["leaderboard"] == spec_dict["leaderboard"]
    assert type(d["evaluation"]["metrics"]) is dict and type(d["leaderboard"]["claims"]) is list  # plain data
    again = spec_from_dict(json.loads(json.dumps(d)))
    assert spec_to_dict(again) == d and spec_hash(again) == spec_hash(spec)
    assert again.evaluation == spec.evaluation and again.leaderboard == spec.leaderboard
    assert again.leaderboard.options is None  # a manifest's spec: the release's own options decide
    assert Options.from_spec(again) == spec.leaderboard.options  # ... and it still checks the same on use
    for run in spec.runs():
        record = json.loads(json.dumps(run.to_dict()))
        assert record["evaluation"] == run.evaluation.to_dict() and record["resources"] == run.resources.to_dict()
        back = RunSpec.from_dict(record)
        assert back.run_id == run.run_id and back.to_dict() == run.to_dict()
        shipped = pickle.loads(pickle.dumps(run))  # submitit pickles each run
        assert shipped.run_id == run.run_id and shipped.resources == run.resources
        assert isinstance(shipped.resources, FrozenMap)


def test_the_written_block_decides_the_hash_not_its_typed_view(write_spec, spec_dict):
    """`seed: 0` written and `seed` left out are the same evaluation but different specs as
    written: the spec hash tells them apart, as it did before the sections were typed."""
    plain = load_spec(write_spec(spec_dict))
    spec_dict["evaluation"]["seed"] = 0
    explicit = load_spec(write_spec(spec_dict, "explicit.yaml"))
    assert plain.evaluation.seed == explicit.evaluation.seed == 0
    assert spec_hash(plain) != spec_hash(explicit)
    assert [r.run_id for r in plain.runs()] == [r.run_id for r in explicit.runs()]  # runs record both keys


def test_frozen_map_equals_and_gives_back_its_dict():
    d = {"a": 1, "b": {"c": [1, {"d": None}]}}
    m = FrozenMap(d)
    assert m == d and m.to_dict() == d and type(m.to_dict()["b"]["c"]) is list
    assert hash(m) == hash(FrozenMap(json.loads(json.dumps(d))))
    assert json.dumps(m.to_dict(), sort_keys=True) == json.dumps(d, sort_keys=True)
    with pytest.raises(TypeError, match="expected a mapping, got list"):
        FrozenMap([("a", 1)])


def test_references_are_carried_typed_and_frozen(write_spec, spec_dict):
    """methods[].reference, checked at load, rides on the leaderboard section as Reference
    objects; the board uses them instead of parsing the methods again."""
    from gmgbench.harness.leaderboard.options import Reference, references

    spec_dict["methods"][1]["reference"] = {"dsprites_procedural": {"mig.discrete_mig": 0.25, "source": "Table 1"}}
    spec = load_spec(write_spec(spec_dict))
    ref = spec.leaderboard.references[("dsprites_procedural", "b")]
    assert ref == Reference(FrozenMap({"mig.discrete_mig": 0.25}), "Table 1")
    assert references(spec) == {("dsprites_procedural", "b"): ref}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.source = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        ref.values["mig.discrete_mig"] = 1.0  # type: ignore[index]
    assert spec_to_dict(spec)["methods"][1]["reference"] == spec_dict["methods"][1]["reference"]  # as written


def test_method_entries_are_frozen_too(write_spec, spec_dict):
    """params, per-method train overrides, resources and references of a method, and each
    grid point, are read-only; the runs get plain dicts of their own (lists as lists)."""
    spec_dict["methods"][0]["params"]["beta"] = [1.0, 4.0]
    spec_dict["methods"][0]["train"] = {"steps": 3}
    spec = load_spec(write_spec(spec_dict))
    m = spec.methods[0]
    for mapping in (m.params, m.train, m.resources, m.reference, m.points()[0].params):
        with pytest.raises(TypeError):
            mapping["x"] = 1  # type: ignore[index]
    assert m.params["beta"] == (1.0, 4.0) and spec_to_dict(spec)["methods"][0]["params"]["beta"] == [1.0, 4.0]
    assert [p.params["beta"] for p in m.points()] == [1.0, 4.0]
    run = spec.runs()[0]
    assert type(run.objective_params) is dict and run.train.steps == 3
    run.objective_params["beta"] = 99.0  # a run's own copy: the spec does not change
    assert m.points()[0].params["beta"] == 1.0
