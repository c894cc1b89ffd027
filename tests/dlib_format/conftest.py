"""Fixtures of the disentanglement_lib interop tests: real TensorFlow, dlib's own environment.

TensorFlow (the ``tf`` extra) is imported here, at collection, so that it is the real one
when tests/dlib_reference.py later installs its stand-ins for dlib's metric modules (it only
does so when no ``tensorflow`` is loaded). dlib's own TF1 code runs in .venv-dlib
(``make venv-dlib``; ``GMGBENCH_DLIB_PYTHON`` names another interpreter). Locally a missing
piece skips these tests; in CI (``CI`` set) it fails them: ``make test`` installs both.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DLIB_SIDE = Path(__file__).with_name("dlib_side.py")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
try:
    import tensorflow  # noqa: F401
    HAVE_TF = True
except ImportError:
    HAVE_TF = False


def _missing(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what} (CI installs it with `make venv` / `make venv-dlib`)")
    pytest.skip(what)


@pytest.fixture(scope="session")
def tf():
    if not HAVE_TF:
        _missing("TensorFlow is not installed: pip install -e '.[tf]'")
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def dlib_python() -> str:
    python = os.environ.get("GMGBENCH_DLIB_PYTHON") or str(REPO / ".venv-dlib" / "bin" / "python")
    if not Path(python).is_file():
        _missing(f"dlib's TF1 environment is missing ({python}); `make venv-dlib` creates it")
    return python


@pytest.fixture(scope="session")
def dlib_side(dlib_python):
    """``dlib_side("represent", ...)``: run a command of dlib_side.py in dlib's environment."""

    def run(*args: str) -> None:
        env = {**os.environ, "PYTHONPATH": "", "CUDA_VISIBLE_DEVICES": ""}
        proc = subprocess.run([dlib_python, str(DLIB_SIDE), *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=600)
        if proc.returncode != 0:
            raise AssertionError(f"dlib_side {args[0]} failed:\n{proc.stderr[-4000:]}")

    return run


TINY = {
    "name": "tiny-dlib",
    "datasets": ["dsprites_procedural"],
    "methods": [{"label": "bvae", "objective": "beta_vae", "params": {"beta": 2.0}}],
    "seeds": 1,
    "train": {"steps": 30, "batch_size": 16, "lr": 0.001, "checkpoint_every": 30, "log_every": 10, "num_threads": 1},
    "evaluation": {"metrics": {"mig": {"num_train": 500}}},
    "leaderboard": {"selection": "mig.discrete_mig"},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tf):
    """A tiny β-VAE trained by ``gmgbench run``: (spec path, store, run id, model)."""
    from gmgbench.harness import checkpoints, cli
    from gmgbench.harness.results import ResultsStore
    from gmgbench.harness.spec import load_spec

    root = tmp_path_factory.mktemp("trained")
    spec_path = root / "tiny.yaml"
    spec_path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    store = ResultsStore(root / "results")
    assert cli.main(["run", str(spec_path), "--results", str(store.root), "--no-leaderboard"]) == 0
    run_id = load_spec(spec_path).runs()[0].run_id
    model, _ = checkpoints.load_model(store.model_path(run_id))
    return spec_path, store, run_id, model


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """The trained run written by ``gmgbench export-dlib``."""
    from gmgbench.harness import cli

    spec_path, store, run_id, _ = trained
    out = tmp_path_factory.mktemp("export") / "model"
    assert cli.main(["export-dlib", run_id, str(out), "--results", str(store.root)]) == 0
    return out
