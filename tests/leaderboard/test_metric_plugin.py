"""A metric added as one plugin file: computed by a tiny study, ranked on its board with its
declared direction (lower first here), and exported to dlib's format under its declared name."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

from gmgbench.harness.cli import main
from gmgbench.harness.leaderboard.export import dlib_names, evaluation_dicts
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from gmgbench.methods import registry
from gmgbench.metrics import table

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = (ROOT / "docs" / "examples" / "code_offset.py").read_text()  # the guide's example (docs/new-metric.md)


@pytest.fixture
def write_spec(tmp_path):
    def write(spec: dict):
        path = tmp_path / "study.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


@pytest.fixture(autouse=True)
def _isolated():
    with registry.isolated(), table.isolated():
        yield


def test_plugin_metric_reaches_the_board_lower_first_and_the_dlib_export(write_spec, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    (tmp_path / "offset_metric.py").write_text(PLUGIN)
    spec_path = write_spec({
        "name": "offset",
        "datasets": ["dsprites_procedural"],
        "plugins": ["offset_metric.py"],  # one file, next to the spec: nothing else is edited
        "methods": [{"label": "b1", "objective": "beta_vae", "params": {"beta": 1.0}},
                    {"label": "b8", "objective": "beta_vae", "params": {"beta": 8.0}}],
        "seeds": 3,  # the fewest a board ranks
        "train": {"steps": 2, "batch_size": 8, "checkpoint_every": 2, "log_every": 1, "num_threads": 1},
        "evaluation": {"metrics": {"code_offset": {"num_train": 32}}},
        "leaderboard": {"selection": "code_offset.offset"},
    })
    store_dir = tmp_path / "store"
    # Two workers: fresh processes that load the plugin file themselves, as Slurm jobs do.
    assert main(["run", str(spec_path), "--results", str(store_dir), "--workers", "2"]) == 0
    assert "offset: 6 done" in capsys.readouterr().out

    results = list(ResultsStore(store_dir).iter_results())
    means = {label: np.mean([r["metrics"]["code_offset"]["offset"] for r in results
                             if r["config"]["method"] == label]) for label in ("b1", "b8")}
    assert all(set(r["metrics"]["code_offset"]) == {"offset", "dims"} for r in results)
    assert means["b1"] != means["b8"]
    lower_first = sorted(means, key=means.get)

    board = (tmp_path / "boards" / "offset" / "latest.md").read_text()
    assert "dsprites_procedural ↓" in board  # the overview's column arrow: lower is better
    assert "code_offset.offset ↓" in board and "code_offset.dims ↓" not in board and "code_offset.dims ↑" not in board
    assert "the lowest mean `code_offset.offset`" in board
    lines = board.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| Method") and "Avg rank" in line)
    rows = [[cell.strip().strip("*") for cell in line.split("|")[1:3]] for line in lines[head + 2:head + 4]]
    # the lower mean ranks first (rank 1 on the one dataset); higher-first would reverse the rows
    assert rows == [[lower_first[0], "1.00"], [lower_first[1], "2.00"]], (means, rows)

    from gmgbench.harness.leaderboard import build

    spec = load_spec(spec_path)
    exported = evaluation_dicts(build(spec, ResultsStore(store_dir)).agg.runs, spec)
    # A fresh `gmgbench evaluate` process knows the metric from --plugin, and computes the stored value.
    run = results[0]
    cli = [sys.executable, "-m", "gmgbench.harness.cli", "evaluate", run["run_id"], "--results", str(store_dir),
           "--metrics", "code_offset", "--no-write"]
    fresh = subprocess.run(cli + ["--plugin", str(tmp_path / "offset_metric.py")], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == {"code_offset": run["metrics"]["code_offset"]}
    unknown = subprocess.run(cli, capture_output=True, text=True)
    assert unknown.returncode == 1 and "unknown metric" in unknown.stderr

    # dlib has no such metric (dlib_name=None): the export names it as we do
    assert {folder for _, folder, _ in exported} == {"code_offset"}
    assert {d["evaluation_config.evaluation.name"] for _, _, d in exported} == {"'code_offset'"}
    assert all({"evaluation_results.offset", "evaluation_results.dims"} <= set(d) for _, _, d in exported)


def test_a_file_that_registers_neither_a_method_nor_a_metric_is_named(write_spec, tmp_path):
    (tmp_path / "empty.py").write_text("x = 1\n")
    spec_path = write_spec({"name": "e", "datasets": ["dsprites_procedural"], "plugins": ["empty.py"],
                            "methods": [{"objective": "beta_vae"}]})
    from gmgbench.harness.errors import UserError

    with pytest.raises(UserError, match=r"empty.py: registers no method; .*or a metric with "
                                        r"gmgbench.metrics.register \(docs/new-metric.md\)"):
        load_spec(spec_path)


def test_a_bad_metric_plugin_fails_the_spec_naming_the_file_and_keeps_nothing(write_spec, tmp_path):
    (tmp_path / "bad.py").write_text(textwrap.dedent("""
        from gmgbench.metrics import Metric, register
        def f(ground_truth_data, representation_function, random_state, artifact_dir=None, num_train=10):
            return {"x": 0.0}
        register(Metric("half", f, ("x",), dlib_name=None, sizes={"num_train": 10}, cost="cheap"))
        register(Metric("bad", f, ("x",), dlib_name=None, sizes={"num_train": 10}, cost="cheap", lower=("y",)))
        """))
    spec_path = write_spec({"name": "b", "datasets": ["dsprites_procedural"], "plugins": ["bad.py"],
                            "methods": [{"objective": "beta_vae"}]})
    from gmgbench.harness.errors import UserError

    with pytest.raises(UserError, match=r"plugins: .*bad.py: metric 'bad': lower names 'y', not among its keys"):
        load_spec(spec_path)
    assert "half" not in [m.name for m in table.declarations()]


def test_the_dlib_export_names_a_metric_as_its_declaration_does():
    def f(ground_truth_data, representation_function, random_state, artifact_dir=None, num_train=10):
        return {"x": 0.0}

    with table.loading("mine.py"):
        table.register(table.Metric("ported", f, ("x",), dlib_name="dlib_ported", sizes={}, cost="cheap"))
        table.register(table.Metric("mig_again", f, ("x",), dlib_name="mig", sizes={}, cost="cheap"))
    assert dlib_names("ported") == ("dlib_ported", "dlib_ported")
    assert dlib_names("mig_again") == ("mig", "mig_again")  # dlib's name, but its own folder beside mig's
    assert dlib_names("mig") == ("mig", "mig") and dlib_names("dci_fast") == ("dci", "dci_fast")
    assert dlib_names("beta_vae") == ("beta_vae_sklearn", "beta_vae_sklearn")
    assert dlib_names("unregistered") == ("unregistered", "unregistered")
