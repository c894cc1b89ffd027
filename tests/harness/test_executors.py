from __future__ import annotations

from harness.executors import pending, run_local
from harness.results import ResultsStore
from harness.spec import load_spec


def test_two_workers_store_every_result_then_skip(write_spec, tiny_spec, tmp_path):
    spec = load_spec(write_spec(tiny_spec))
    runs = spec.runs()
    store = ResultsStore(tmp_path / "store")
    outcomes = run_local(runs, store, workers=2, progress=False)
    assert sorted(o.status for o in outcomes) == ["done"] * len(runs)
    assert pending(runs, store) == []
    stored = {r["run_id"]: r for r in store.iter_results()}
    assert set(stored) == {r.run_id for r in runs}
    for run in runs:
        mig = stored[run.run_id]["metrics"]["mig"]["discrete_mig"]
        assert 0.0 <= mig <= 1.0
    again = run_local(runs, store, workers=2, progress=False)
    assert [o.status for o in again] == ["skipped"] * len(runs)


def test_one_failing_run_does_not_stop_the_others(write_spec, tiny_spec, tmp_path):
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["methods"].append({"label": "broken", "objective": "beta_vae", "params": {"beta": 1.0},
                                 "train": {"lr": 1.0e30}})
    spec = load_spec(write_spec(tiny_spec))
    store = ResultsStore(tmp_path / "store")
    outcomes = {o.name: o for o in run_local(spec.runs(), store, workers=1, progress=False)}
    failed = [o for o in outcomes.values() if o.status == "failed"]
    assert failed and all(o.name.startswith("broken") for o in failed)
    assert all(o.status == "done" for o in outcomes.values() if o.name.startswith("bvae"))
    for o in failed:
        assert not store.has_result(o.run_id)
        assert "FloatingPointError" in store.read_failure(o.run_id)["error"]
