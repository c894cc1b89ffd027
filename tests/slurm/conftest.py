"""The local Slurm cluster for tests marked ``slurm``: installed and started once per session.

Needs root (slurmd starts jobs as their user) and apt (Debian's slurm-wlm); anywhere else
the Slurm tests skip and say why. The cluster advertises 4 CPUs (more than CI's 2 cores,
so that the parallelism cap is what limits concurrency) and a small MaxArraySize (5), so
that arrays must be chunked. Daemons this session started are stopped at its end.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "slurm" / "local"
MAX_ARRAY_SIZE = 5
CLUSTER_ENV = {"SLURM_CPUS": "4", "SLURM_MEM_MB": "8192", "SLURM_MAX_ARRAY_SIZE": str(MAX_ARRAY_SIZE)}


def _run(script: str, timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / script)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def _daemons_running() -> bool:
    out = subprocess.run(["bash", "-c", f"source {SCRIPTS}/common.sh; test -f $PIDS && "
                          "while read -r n p e; do is_ours $p $e || exit 1; done < $PIDS"], capture_output=True)
    return out.returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster():
    """Install (apt) and start the local cluster; skip with the reason where that cannot work."""
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root (slurmd starts jobs as their user); run `make test` as root")
    installed = all(Path(p).exists() for p in ("/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/slurmdbd",
                                                "/usr/sbin/munged", "/usr/sbin/mariadbd"))
    if not installed and shutil.which("apt-get") is None:
        pytest.skip("Slurm is not installed and apt-get is missing: install slurm-wlm, munge, slurmdbd, mariadb-server")
    if not installed:
        try:
            res = _run("install.sh", timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip("installing Slurm with apt-get took over 15 minutes (no network?)")
        if res.returncode != 0:
            pytest.skip(f"could not install Slurm with apt-get (offline?): {res.stderr.strip()[-500:]}")
    was_running = _daemons_running()
    res = _run("up.sh", timeout=300, env=CLUSTER_ENV)
    # Installed but not starting is a bug in up.sh, not a reason to skip.
    assert res.returncode == 0, f"slurm/local/up.sh failed:\n{res.stdout}\n{res.stderr}"
    yield {"max_array_size": MAX_ARRAY_SIZE, "cpus": int(CLUSTER_ENV["SLURM_CPUS"])}
    if not was_running:
        _run("down.sh", timeout=300)


@pytest.fixture
def study(tmp_path):
    """study(name, **overrides) -> (spec path, results dir): a tiny procedural study."""

    def make(name: str, **overrides) -> tuple[Path, Path]:
        raw = {
            "name": name,
            "datasets": ["dsprites_procedural"],
            "methods": [{"label": "bvae", "objective": "beta_vae", "params": {"beta": [1.0, 2.0]}}],
            "seeds": 1,
            "train": {"steps": 20, "batch_size": 16, "latent_dim": 4, "lr": 0.001,
                      "checkpoint_every": 10, "log_every": 10, "num_threads": 1},
            "evaluation": {"metrics": {}},
        }
        raw.update(overrides)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path, tmp_path / f"results-{name}"

    return make


@pytest.fixture
def profile(tmp_path):
    """profile(**overrides) -> path of a copy of slurm/profiles/local.yaml with overrides."""

    def make(**overrides) -> Path:
        raw = yaml.safe_load((REPO / "slurm" / "profiles" / "local.yaml").read_text())
        raw.update(overrides)
        path = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path

    return make
