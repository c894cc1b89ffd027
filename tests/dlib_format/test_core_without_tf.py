"""The core never imports TensorFlow; external entries of a study spec are checked without it."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from gmgbench.harness.spec import SpecError, parse_spec

REPO = Path(__file__).resolve().parents[2]


def test_gmgbench_run_never_imports_tensorflow(tmp_path):
    """A whole `gmgbench run` (train, evaluate, leaderboard) and the interop package's import.

    It can fail: the tf extra is installed wherever `make test` runs, so any import of
    TensorFlow on these paths would show in sys.modules.
    """
    spec = {"name": "no-tf", "datasets": ["dsprites_procedural"],
            "methods": [{"objective": "beta_vae", "params": {"beta": 1.0}}], "seeds": 1,
            "train": {"steps": 2, "batch_size": 8, "checkpoint_every": 2, "log_every": 1, "num_threads": 1},
            "evaluation": {"metrics": {"mig": {"num_train": 64, "batch_size": 16}}},
            "leaderboard": {"selection": "mig.discrete_mig"}}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(spec))
    code = textwrap.dedent(f"""
        import sys
        from gmgbench.harness import cli
        import gmgbench.harness.dlib_format, gmgbench.harness.dlib_format.entries  # the interop package itself is light
        rc = cli.main(["run", {str(tmp_path / 's.yaml')!r}, "--results", {str(tmp_path / 'store')!r}])
        loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith(("tensorflow.", "tensorflow_hub")))
        print("RC", rc, "TF", loaded)
    """)
    env = {"PYTHONPATH": str(REPO), "GMGBENCH_LEADERBOARDS": str(tmp_path / "lb"), "PATH": "/usr/bin:/bin"}
    import os

    env.update({k: v for k, v in os.environ.items() if k.startswith(("POT_", "XLA_", "HOME"))})
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert "RC 0 TF []" in proc.stdout, proc.stdout + proc.stderr[-3000:]


@pytest.mark.parametrize("entry, message", [
    ({"name": "a", "path": "x", "dataset": "dsprites_procedural", "seed": 1}, "external[0].seed: unknown key"),
    ({"name": "a", "path": "x"}, "external[0].dataset: missing"),
    ({"name": "a", "path": "x", "dataset": "shapes3d_procedural"}, "external[0].dataset: 'shapes3d_procedural' is not a dataset of this study"),
    ("zoo/0", "external[0]: an external model is {name"),
])
def test_external_entries_are_checked_with_the_spec(entry, message, tmp_path):
    raw = {"name": "s", "datasets": ["dsprites_procedural"], "methods": ["beta_vae"], "external": [entry]}
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]").replace("{", r"\{")):
        parse_spec(raw, tmp_path / "s.yaml")


def test_external_paths_are_relative_to_the_spec(tmp_path):
    raw = {"name": "s", "datasets": ["dsprites_procedural"], "methods": ["beta_vae"],
           "external": [{"name": "z", "path": "zoo/0", "dataset": "dsprites_procedural"}]}
    (ext,) = parse_spec(raw, tmp_path / "sub" / "s.yaml").external
    assert ext.path == str((tmp_path / "sub" / "zoo" / "0").resolve()) and ext.label == "z (external)"
    raw["external"].append(dict(raw["external"][0]))
    with pytest.raises(SpecError, match="two external models are named 'z'"):
        parse_spec(raw, tmp_path / "s.yaml")


def _external_result(name: str, dataset: str, evaluation: dict, mig: float) -> dict:
    return {"schema": 1, "status": "done",
            "external": {"name": name, "module_sha256": "ab" * 32, "representation": "gaussian_encoder/mean"},
            "config": {"dataset": dataset, "evaluation": evaluation}, "metrics": {"mig": {"discrete_mig": mig}},
            "provenance": {"eval_seconds": 1.0}}


def test_leaderboard_rows_of_external_results(tmp_path):
    """Stored external results become labelled rows; only comparable ones (same dataset and
    evaluation settings) appear; a spec entry not yet imported is missing; a corrupt file is one line."""
    import json

    from gmgbench.harness.dlib_format.entries import external_id
    from gmgbench.harness.leaderboard import LeaderboardError, build
    from gmgbench.harness.results import ResultsStore

    raw = {"name": "s", "datasets": ["dsprites_procedural"], "methods": ["beta_vae"], "seeds": 1,
           "evaluation": {"metrics": {"mig": {"num_train": 100}}}, "leaderboard": {"selection": "mig.discrete_mig"},
           "external": [{"name": "listed", "path": "zoo/1", "dataset": "dsprites_procedural"}]}
    spec = parse_spec(raw, tmp_path / "s.yaml")
    store = ResultsStore(tmp_path / "store")
    ev = {"metrics": {"mig": {"num_train": 100}}, "seed": 0}
    folder = store.root / "external"
    folder.mkdir(parents=True)
    for name, evaluation, mig in (("zoo-0", ev, 0.25), ("other-sizes", {"metrics": {"mig": {}}, "seed": 0}, 0.5)):
        (folder / f"{external_id(name, 'dsprites_procedural', evaluation)}.json").write_text(
            json.dumps(_external_result(name, "dsprites_procedural", evaluation, mig)))
    board = build(spec, store)
    runs = board.agg.runs.set_index("method")
    assert runs.loc["zoo-0 (external)", "mig.discrete_mig"] == 0.25
    assert runs.loc["zoo-0 (external)", "setting"] == "tfhub sha256:" + "ab" * 6
    assert runs.loc["listed (external)", "status"] == "missing"
    assert "other-sizes (external)" not in runs.index  # scored with other metric sizes: not comparable
    assert "| zoo-0 (external)" in board.markdown and "trained elsewhere" in board.markdown
    (folder / "ext-0000000000000000.json").write_text("{not json")
    with pytest.raises(LeaderboardError, match="ext-0000000000000000.json: corrupt JSON"):
        build(spec, store)


def test_without_tensorflow_the_interop_commands_say_how_to_get_it(tmp_path):
    (tmp_path / "m" / "tfhub").mkdir(parents=True)
    (tmp_path / "m" / "tfhub" / "saved_model.pb").write_bytes(b"")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["tensorflow"] = None  # as if the tf extra were not installed
        from gmgbench.harness import cli
        sys.exit(cli.main(["import-dlib", {str(tmp_path / 'm')!r}, "--results", {str(tmp_path / 's')!r},
                           "--dataset", "dsprites_procedural"]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "gmgbench import-dlib: error: disentanglement_lib interop needs TensorFlow: pip install 'gmgbench[tf]' "
        "(or `make venv`, which installs it)"]


# -- issue 27: the round trip ------------------------------------------------------------------
def _study_and_store(tmp_path):
    from gmgbench.harness.results import ResultsStore

    raw = {"name": "s", "datasets": ["dsprites_procedural"], "methods": ["beta_vae"], "seeds": 1,
           "evaluation": {"metrics": {"mig": {"num_train": 100}}}, "leaderboard": {"selection": "mig.discrete_mig"}}
    spec = parse_spec(raw, tmp_path / "s.yaml")
    return spec, ResultsStore(tmp_path / "store"), {"metrics": {"mig": {"num_train": 100}}, "seed": 0}


def _reimport(store, evaluation, run_id: str) -> Path:
    import json

    from gmgbench.harness.dlib_format.entries import external_id

    result = _external_result("back", "dsprites_procedural", evaluation, 0.0053)
    result["external"]["gin"] = {"gmgbench.run_id": repr(run_id), "model.name": "'beta_vae'"}
    path = store.external_path(external_id("back", "dsprites_procedural", evaluation))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))
    return path


def test_a_reimported_run_is_labelled_and_never_ranked_against_its_source(tmp_path):
    from gmgbench.harness.errors import UserError
    from gmgbench.harness.leaderboard import build

    spec, store, ev = _study_and_store(tmp_path)
    _reimport(store, ev, "0123456789abcdef")  # a run of another study
    runs = build(spec, store).agg.runs.set_index("method")
    assert "back (re-imported gmgbench run 0123456789abcdef)" in runs.index
    (own,) = spec.runs()
    path = _reimport(store, ev, own.run_id)
    with pytest.raises(UserError, match=rf"{path}: 'back' is run {own.run_id} of this study exported with "
                                         "export-dlib and imported back; it would be ranked against its own source"):
        build(spec, store)


def test_importing_an_export_of_a_run_of_the_same_store_is_refused(tmp_path):
    from gmgbench.harness.dlib_format.errors import DlibFormatError
    from gmgbench.harness.dlib_format.importer import check_not_own_run

    spec, store, _ = _study_and_store(tmp_path)
    (run,) = spec.runs()
    model = tmp_path / "exported"
    (model / "results" / "gin").mkdir(parents=True)
    (model / "results" / "gin" / "train.gin").write_text(f"gmgbench.run_id = '{run.run_id}'\ngmgbench.study = 's'\n")
    assert check_not_own_run(model, store) == {"run_id": run.run_id, "study": "s"}  # not in this store yet
    store.workdir(run.run_id).mkdir(parents=True)
    with pytest.raises(DlibFormatError, match=rf"an export of run {run.run_id} of this results store .*"
                                              r"import it into another store \(--results DIR\)"):
        check_not_own_run(model, store)


def test_the_export_names_a_regularised_model_truthfully():
    from gmgbench.harness.dlib_format.exporter import _train_gin

    raw = {"name": "s", "datasets": ["dsprites_procedural"], "evaluation": {"metrics": {}},
           "methods": [{"objective": "beta_vae", "params": {"beta": 4.0}},
                       {"objective": "beta_vae", "params": {"beta": 4.0},
                        "regularisers": [{"name": "gmg", "params": {"weight": 1.0}}]}]}
    plain, regularised = (_train_gin(r, {}, (64, 64, 1)) for r in parse_spec(raw).runs())
    assert "model.model = @vae()" in plain and "vae.beta = 4.0" in plain
    assert "model.model" not in regularised and "vae.beta" not in regularised  # β-VAE + GMG is no dlib @vae()
    assert "gmgbench.regularisers = " in regularised and "gmg" in regularised
