"""The core never imports TensorFlow; external entries of a study spec are checked without it."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from harness.spec import SpecError, parse_spec

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
        from harness import cli
        import harness.dlib_format, harness.dlib_format.entries  # the interop package itself is light
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
