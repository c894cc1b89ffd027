"""Issue 27 (part B): the results store under faults. Each test reproduces a case of the
issue's probe: a ``--force`` swap that is not locked or not checked, and scores of the wrong
type, must never replace or hide a good result."""
from __future__ import annotations

import json
import logging

import pytest

from gmgbench.harness.cli import main
from gmgbench.harness.executors import pending
from gmgbench.harness.fileio import file_lock
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from gmgbench.harness.train import run_and_store


@pytest.fixture
def one_spec(write_spec, tiny_spec):
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["seeds"] = 1
    return write_spec(tiny_spec)


@pytest.fixture
def done_run(one_spec, tmp_path):
    """A finished run, its store, and the bytes of its result and model."""
    store = ResultsStore(tmp_path / "store")
    (run,) = load_spec(one_spec).runs()
    run_and_store(run, store, progress=False)
    model = store.workdir(run.run_id) / "model.pt"
    return run, store, store.result_path(run.run_id).read_bytes(), model.read_bytes()


def _plant_next(store: ResultsStore, run_id: str, content: str) -> None:
    """A ``--force`` retraining that died at (or forged) its commit point."""
    nxt = store.next_workdir(run_id)
    nxt.mkdir(parents=True)
    (nxt / "model.pt").write_bytes(b"not the good model")
    (nxt / "result.json").write_text(content)


@pytest.mark.parametrize("content", ["{}", '{"run_id": "x", "metr', "[]", "WRONG_ID"])
def test_a_bad_next_result_never_replaces_a_good_one_and_is_quarantined(done_run, one_spec, content, capsys,
                                                                        caplog):
    run, store, result, model = done_run
    if content == "WRONG_ID":  # a complete result, of another run
        doc = json.loads(result)
        content = json.dumps({**doc, "run_id": "0" * 16})
    _plant_next(store, run.run_id, content)
    with caplog.at_level(logging.WARNING, logger="gmgbench.harness.results"):
        assert main(["run", str(one_spec), "--results", str(store.root), "--no-leaderboard"]) == 0
    assert store.result_path(run.run_id).read_bytes() == result
    assert (store.workdir(run.run_id) / "model.pt").read_bytes() == model
    assert not store.next_workdir(run.run_id).exists()
    (moved,) = (store.root / "quarantine" / "work").iterdir()
    assert moved.name.startswith(f"{run.run_id}.next.") and (moved / "result.json").read_text() == content
    assert str(moved) in caplog.text and str(store.next_workdir(run.run_id) / "result.json") in caplog.text


@pytest.mark.parametrize("flag", ["--force", "--repair"])
def test_a_truncated_next_result_does_not_block_force_or_repair(done_run, one_spec, flag):
    run, store, result, _ = done_run
    _plant_next(store, run.run_id, '{"run_id": "')
    assert main(["run", str(one_spec), "--results", str(store.root), "--no-leaderboard", flag]) == 0
    assert store.has_result(run.run_id)
    if flag == "--force":
        assert store.result_path(run.run_id).read_bytes() != result  # retrained and swapped in
    else:
        assert store.result_path(run.run_id).read_bytes() == result


def test_a_swap_is_left_to_the_process_holding_the_run_lock(done_run):
    run, store, result, _ = done_run
    good = json.loads(result)
    good["provenance"]["started"] = -1.0  # recognisable
    _plant_next(store, run.run_id, json.dumps({"schema": 1, **good}))
    with file_lock(store.run_lock_path(run.run_id)) as held:
        assert held
        assert pending([run], store) == []  # done (the old result), but the swap is not touched
        assert store.result_path(run.run_id).read_bytes() == result
        assert store.next_workdir(run.run_id).exists()
    assert pending([run], store) == []
    assert store.read_result(run.run_id)["provenance"]["started"] == -1.0
    assert (store.workdir(run.run_id) / "model.pt").read_bytes() == b"not the good model"


@pytest.mark.parametrize("value", ['"0.5"', "null", "true", "[0.5]"])
def test_a_score_that_is_not_a_number_is_named_not_dropped(done_run, one_spec, value, capsys, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    run, store, result, _ = done_run
    doc = json.loads(result)
    doc["metrics"]["mig"]["discrete_mig"] = json.loads(value)
    store.result_path(run.run_id).write_text(json.dumps(doc))
    assert store.result_state(run.run_id)[0] == "corrupt"
    capsys.readouterr()
    assert main(["leaderboard", str(one_spec), "--results", str(store.root)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"{store.result_path(run.run_id)}: metrics.mig.discrete_mig: " in err and "not a number" in err


def test_evaluate_refuses_scores_that_contradict_the_runs_config(done_run, capsys):
    run, store, result, _ = done_run
    args = ["evaluate", run.run_id, "--results", str(store.root)]
    capsys.readouterr()
    assert main([*args, "--force", "--metrics", '{"mig": {"num_train": 20}}']) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f'was evaluated with mig {{"batch_size": 16, "num_train": 64}}' in err and "--no-write" in err
    assert store.result_path(run.run_id).read_bytes() == result
    assert main([*args, "--no-write", "--metrics", '{"mig": {"num_train": 20}}']) == 0
    assert store.result_path(run.run_id).read_bytes() == result
    # A name alone takes the run's own settings: the same scores again (evaluation is seeded).
    assert main([*args, "--force", "--metrics", "mig"]) == 0
    assert store.read_result(run.run_id)["metrics"] == json.loads(result)["metrics"]
    assert "evaluation_added" not in store.read_result(run.run_id)


def test_evaluate_records_the_settings_of_a_metric_the_config_lacks(done_run):
    run, store, _, _ = done_run
    sap = {"num_train": 64, "num_test": 32}
    assert main(["evaluate", run.run_id, "--results", str(store.root), "--metrics", json.dumps({"sap": sap})]) == 0
    stored = store.read_result(run.run_id)
    assert "sap" in stored["metrics"] and stored["evaluation_added"] == {"sap": sap}


def test_a_checkpoint_that_loads_but_lacks_keys_is_named_and_repaired(one_spec, tmp_path, capsys):
    from gmgbench.harness import checkpoints

    store = ResultsStore(tmp_path / "store")
    (run,) = load_spec(one_spec).runs()
    ckpt = store.workdir(run.run_id) / "checkpoint.pt"
    checkpoints.save({"step": 2, "curve": []}, ckpt)
    argv = ["run", str(one_spec), "--results", str(store.root), "--no-leaderboard"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{ckpt}: incomplete checkpoint (no model, optimizer, noise, sampler, elapsed, torch_rng)" in err
    assert "KeyError" not in err and "--repair" in err
    assert main([*argv, "--repair"]) == 0 and store.has_result(run.run_id)
    (moved,) = (store.root / "quarantine").rglob("checkpoint.pt.*")
    assert moved.parent.name == run.run_id
