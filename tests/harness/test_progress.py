"""Progress: events from a run (here or in a worker) become one display with ETAs."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from gmgbench.harness.executors import run_local
from gmgbench.harness.progress import StudyProgress, format_seconds
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from gmgbench.harness.train import run_and_store


def _runs(*ids, steps=100):
    return [SimpleNamespace(run_id=i, name=f"run-{i}", train=SimpleNamespace(steps=steps)) for i in ids]


def _feed(display, rid, steps, total=100):
    display.handle({"kind": "start", "run_id": rid, "name": f"run-{rid}", "total": total, "step": 0})
    for s in steps:
        display.handle({"kind": "step", "run_id": rid, "name": f"run-{rid}", "total": total, "step": s, "loss": 12.5})


def test_plain_lines_when_not_a_terminal():
    out = io.StringIO()
    display = StudyProgress(_runs("a", "b"), label="study", stream=out, tty=False)
    _feed(display, "a", range(1, 101))
    display.handle({"kind": "eval", "run_id": "a", "name": "run-a", "total": 100, "metric": "mig", "index": 0, "count": 2})
    display.finish("a", "run-a", "done")
    _feed(display, "b", [50])
    display.finish("b", "run-b", "failed", "FloatingPointError: nan")
    display.close()
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and "\x1b" not in text  # nothing redrawn in a log
    steps_a = [ln for ln in lines if ln.startswith("  run-a: step")]
    assert len(steps_a) == 10  # one per tenth of the run, not one per event
    assert steps_a[0].startswith("  run-a: step 10/100, loss 12.5,") and "ETA" in steps_a[0]
    assert "  run-a: evaluating mig (1 of 2)" in lines
    assert any(ln.startswith("[1/2 runs] done    run-a") and "study ETA" in ln for ln in lines)
    assert "[2/2 runs] failed  run-b  (FloatingPointError: nan)" in lines


def test_bars_on_a_terminal_count_runs_and_steps():
    out = io.StringIO()
    display = StudyProgress(_runs("a", "b"), label="study", stream=out, tty=True, workers=2)
    _feed(display, "a", [30])
    _feed(display, "b", [10])
    assert display._bar.n == 40 and display._bar.total == 200
    assert display.eta() is not None
    display.finish("a", "run-a", "done")
    assert display._bar.n == 110  # a finished run counts all its steps
    assert "study: 1/2 runs" in display._bar.desc
    display.close()
    assert "done    run-a" in out.getvalue()


def test_late_events_of_a_finished_run_are_dropped():
    out = io.StringIO()
    display = StudyProgress(_runs("a"), stream=out, tty=False)
    display.finish("a", "run-a", "done")
    _feed(display, "a", [100])  # a worker's queue may deliver after the outcome
    assert out.getvalue().count("run-a") == 1


@pytest.mark.parametrize("seconds, text", [(5, "5s"), (65, "1m05s"), (3700, "1h01m"), (None, "?")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text


def test_a_run_reports_steps_and_each_metric(write_spec, tiny_spec, tmp_path):
    tiny_spec["evaluation"]["metrics"]["dci"] = {"num_train": 64, "num_test": 32}
    run = load_spec(write_spec(tiny_spec)).runs()[0]
    events = []
    run_and_store(run, ResultsStore(tmp_path / "store"), progress=events.append)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "start" and events[0]["step"] == 0 and events[0]["total"] == run.train.steps
    assert "step" in kinds and max(e["step"] for e in events if e["kind"] == "step") == run.train.steps
    evals = [(e["metric"], e["index"], e["count"]) for e in events if e["kind"] == "eval"]
    assert evals == [("mig", 0, 2), ("dci", 1, 2)]
    assert kinds.index("eval") > max(i for i, k in enumerate(kinds) if k == "step")


@pytest.mark.slow
def test_workers_report_to_the_parent_display(write_spec, tiny_spec, tmp_path):
    tiny_spec["train"]["steps"] = 10
    runs = load_spec(write_spec(tiny_spec), only=["seed=0"]).runs()
    out = io.StringIO()
    outcomes = run_local(runs, ResultsStore(tmp_path / "store"), workers=2, progress=True, stream=out, label="tiny")
    assert sorted(o.status for o in outcomes) == ["done", "done"]
    text = out.getvalue()
    for run in runs:  # each worker's steps and metrics reached the parent's display
        assert f"  {run.name}: step 10/10" in text
        assert f"  {run.name}: evaluating mig (1 of 1)" in text
    assert "[2/2 runs] done" in text
