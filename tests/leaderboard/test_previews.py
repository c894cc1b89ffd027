"""A throwaway board never replaces the study's working board: a run narrowed by --only/--set,
or a board read from another results store than latest.md's, is written as a labelled preview."""
from __future__ import annotations

from gmgbench.harness import leaderboard
from gmgbench.harness.cli import main
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from lb_helpers import fill, known_values, toy_store

SPEC = ("name: clitest\ndatasets: [dsprites_procedural]\n"
        "methods:\n  - {label: bvae, objective: beta_vae, params: {beta: [1.0, 4.0]}}\n"
        "seeds: 3\nevaluation:\n  metrics: {mig: {}, dci: {}}\n")


def test_a_subset_run_leaves_latest_md_untouched(tmp_path, capsys):
    path = tmp_path / "clitest.yaml"
    path.write_text(SPEC)
    store = fill(ResultsStore(tmp_path / "res"), load_spec(path),
                 lambda run: {"dci.disentanglement": run.objective_params["beta"] / 10 + run.seed / 100,
                              "mig.discrete_mig": 0.1})
    root = tmp_path / "lb"
    common = [str(path), "--results", str(store.root), "--root", str(root)]
    assert main(["leaderboard", *common]) == 0
    latest = root / "clitest" / "latest.md"
    before, tables = latest.read_bytes(), (root / "clitest" / "latest" / "runs.csv").read_bytes()
    assert "the spec expects 6 runs" in before.decode()

    assert main(["leaderboard", *common, "--only", "seed=0", "--set", "train.steps=5"]) == 0
    out = capsys.readouterr().out
    assert latest.read_bytes() == before and (root / "clitest" / "latest" / "runs.csv").read_bytes() == tables
    preview = (root / "clitest" / "preview.md").read_text()
    assert preview.startswith("# Leaderboard: clitest\n\n> **Preview, not the study's board**: built from "
                              "`--only seed=0`; `--set train.steps=5`.")
    assert "the study's working board (`latest.md`) is left as it was" in preview
    assert (root / "clitest" / "preview" / "runs.csv").is_file() and str(root / "clitest" / "preview.md") in out


def test_a_board_from_another_results_store_is_a_preview(tmp_path):
    spec, store = toy_store(tmp_path)
    root = tmp_path / "lb"
    first = leaderboard.write_latest(leaderboard.build(spec, store, root=root))
    assert first.name == "latest.md"
    before = first.read_bytes()
    other = fill(ResultsStore(tmp_path / "elsewhere"), spec, known_values, skip={("ds_a", "alpha", "beta=1.0", 2)})
    board = leaderboard.build(spec, other, root=root)
    path = leaderboard.write_latest(board)
    assert path.name == "preview.md" and first.read_bytes() == before
    assert f"built from the results store `{other.root.resolve()}`" in path.read_text()
    # The store latest.md came from keeps updating it.
    again = leaderboard.write_latest(leaderboard.build(spec, store, root=root))
    assert again == first and "Preview" not in again.read_text()
