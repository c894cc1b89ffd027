from __future__ import annotations

import ast
import json
import re
from pathlib import Path

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


# -- only the store knows its layout ------------------------------------------------------
_LAYOUT_FILES = ("checkpoint.pt", "model.pt", "curve.csv", ".lock", "result.json", "attempts.jsonl")
_LAYOUT_LITERAL = re.compile(r"(?:^|/)(?:%s)$" % "|".join(map(re.escape, _LAYOUT_FILES)))


def _layout_literals(source: str, filename: str) -> list[str]:
    """``line: literal`` for each string in the code (docstrings aside) that is, or ends in,
    a file name of the store's layout: what a path joined by hand is made of."""
    tree = ast.parse(source, filename)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [f"{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            and _LAYOUT_LITERAL.search(node.value)]


def test_only_the_store_names_its_files():
    """harness/results.py alone joins ``checkpoint.pt``, ``model.pt``, ``.lock`` ... onto a
    folder (``ResultsStore`` and ``RunFiles``); everything else asks it."""
    root = Path(__file__).resolve().parents[2]
    found = {}
    for pkg in ("harness", "methods", "metrics"):
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel != "harness/results.py":
                hits = _layout_literals(path.read_text(), rel)
                if hits:
                    found[rel] = hits
    assert found == {}


def test_the_layout_check_sees_a_path_joined_by_hand():
    src = ('"""Saves ``model.pt``."""\n'
           'def f(workdir, rid):\n'
           '    """In ``work/<id>/checkpoint.pt``."""\n'
           '    a = workdir / "checkpoint.pt"\n'
           '    b = f"{workdir}/.lock"\n'
           '    note = f"model.pt of run {rid} is missing"\n')
    assert _layout_literals(src, "x.py") == ["4: 'checkpoint.pt'", "5: '/.lock'"]


def test_run_files_and_store_paths_agree(tmp_path):
    store = ResultsStore(tmp_path)
    files = store.run_files("r1")
    assert files.folder == store.workdir("r1")
    assert store.checkpoint_path("r1") == files.checkpoint and store.model_path("r1") == files.model
    assert store.run_lock_path("r1") == files.lock
    assert store.checkpoint_path("r1", next=True).parent == store.next_workdir("r1")
    assert len({files.checkpoint, files.model, files.curve, files.lock, files.swap_result}) == 5
