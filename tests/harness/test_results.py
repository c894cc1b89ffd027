from __future__ import annotations

import json

import pytest

from gmgbench.harness.results import ResultExists, ResultsStore, atomic_write_json


def test_write_read_and_no_silent_overwrite(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_result("abc", {"metrics": {"mig": {"discrete_mig": 0.5}}})
    assert store.has_result("abc")
    assert store.read_result("abc")["metrics"]["mig"]["discrete_mig"] == 0.5
    with pytest.raises(ResultExists, match="--force"):
        store.write_result("abc", {"metrics": {}})
    assert store.read_result("abc")["metrics"]["mig"]["discrete_mig"] == 0.5
    store.write_result("abc", {"metrics": {}}, overwrite=True)
    assert store.read_result("abc")["metrics"] == {}


def test_result_clears_failure_and_leaves_no_temporaries(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_failure("r1", {"error": "boom"})
    assert store.read_failure("r1")["error"] == "boom"
    store.write_result("r1", {"metrics": {}})
    assert store.read_failure("r1") is None
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["r1.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"v": 1})

    class Boom(Exception):
        pass

    def explode(*a, **k):
        raise Boom

    monkeypatch.setattr("gmgbench.harness.results.os.replace", explode)
    with pytest.raises(Boom):
        atomic_write_json(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 1}
    assert list(tmp_path.iterdir()) == [path]


def test_corrupt_result_names_the_file(tmp_path):
    store = ResultsStore(tmp_path)
    store.result_path("bad").parent.mkdir(parents=True)
    store.result_path("bad").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: corrupt JSON"):
        list(store.iter_results())


def test_job_records_accumulate(tmp_path):
    store = ResultsStore(tmp_path)
    store.record_job("r", {"job_id": "1_0"})
    store.record_job("r", {"job_id": "2_3"})
    assert [j["job_id"] for j in store.jobs("r")] == ["1_0", "2_3"]


def test_provenance_records_the_commit_the_process_loaded(monkeypatch):
    # A worker that started at one commit and finishes after a new commit must not claim it.
    from gmgbench.harness import results

    monkeypatch.setattr(results, "_git_commit", lambda: "f" * 40)
    assert results.provenance()["git_commit"] == results._CODE_COMMIT != "f" * 40
