"""Packages whose private API we use are capped, and an untested version fails loudly."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from gmgbench.metrics.validation import UNTESTED_ENV, require_version

REPO = Path(__file__).resolve().parents[2]


def _fake_versions(monkeypatch, **versions):
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda dist: versions.get(dist, None) or real(dist))
    monkeypatch.delenv(UNTESTED_ENV, raising=False)


def test_installed_versions_are_in_the_tested_ranges():
    from gmgbench.harness.slurm.profile import SUBMITIT_TESTED
    from gmgbench.metrics.dci import SKLEARN_TESTED

    assert require_version("scikit-learn", *SKLEARN_TESTED, why="x") == metadata.version("scikit-learn")
    assert require_version("submitit", *SUBMITIT_TESTED, why="x") == metadata.version("submitit")


@pytest.mark.parametrize("version", ["1.10.0", "1.4.2", "2.0.0rc1"])
def test_an_untested_version_fails_loudly(monkeypatch, version):
    _fake_versions(monkeypatch, **{"scikit-learn": version})
    with pytest.raises(RuntimeError, match=rf"scikit-learn {re.escape(version)} is installed.*scikit-learn>=1.5,<1.10"):
        require_version("scikit-learn", "1.5", "1.10", why="it is private")


def test_untested_version_can_be_allowed_with_a_warning(monkeypatch):
    _fake_versions(monkeypatch, **{"scikit-learn": "1.10.1"})
    monkeypatch.setenv(UNTESTED_ENV, "1")
    with pytest.warns(RuntimeWarning, match="scikit-learn 1.10.1"):
        assert require_version("scikit-learn", "1.5", "1.10", why="it is private") == "1.10.1"


def test_dci_refuses_an_untested_scikit_learn_at_import():
    probe = ("import importlib.metadata as m; real = m.version\n"
             "m.version = lambda d: '1.10.0' if d == 'scikit-learn' else real(d)\n"
             "import gmgbench.metrics.dci\n")
    env = {k: v for k, v in os.environ.items() if k != UNTESTED_ENV}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "RuntimeError: scikit-learn 1.10.0 is installed, but metrics/dci.py" in proc.stderr


def test_launcher_refuses_an_untested_submitit(monkeypatch):
    from gmgbench.harness.slurm import profile

    _fake_versions(monkeypatch, submitit="1.6.0")
    with pytest.raises(RuntimeError, match="submitit 1.6.0 is installed.*_valid_parameters"):
        profile.resource_keys()


def test_pyproject_caps_match_the_checked_ranges():
    from gmgbench.harness.slurm.profile import SUBMITIT_TESTED
    from gmgbench.metrics.dci import SKLEARN_TESTED

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"scikit-learn>={SKLEARN_TESTED[0]},<{SKLEARN_TESTED[1]}" in deps
    assert f"submitit>={SUBMITIT_TESTED[0]},<{SUBMITIT_TESTED[1]}" in deps
    torch = next(d for d in deps if d.startswith("torch"))
    assert "==" not in torch  # the exact version is the lock's (constraints.txt), not the package's
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text().split()
