"""The wheel works outside the checkout: build it, install it into a fresh venv, run the demo.

This is how CI (`make test`) checks the package: the wheel is built from a copy of the
source (so the checkout gets no build/ or *.egg-info), installed with ``--no-deps`` into a
new venv that sees the test venv's packages only through a ``.pth`` line added after the
install (so pip never touches the test venv), and ``gmgbench demo``, shrunk with ``--set``
and ``--only``, runs in an empty temporary folder. The leaderboard must appear there, and
nothing in the checkout may change.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# .venv-dlib: dlib's TF1 environment (`make venv-dlib`), 1.6 GB that the copy must not carry.
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", ".venv-dlib", "build", "dist", "*.egg-info", "__pycache__",
                                     "results", "leaderboards", "tests", ".benchmarks", ".pytest_cache")
TINY_DEMO = ["--workers", "1", "--only", "seed=0", "--set", "train.steps=12", "--set", "train.log_every=4",
             "--set", "train.checkpoint_every=6", "--set", "evaluation.metrics.mig.num_train=200",
             "--set", "evaluation.metrics.dci.num_train=200", "--set", "evaluation.metrics.dci.num_test=100"]


def _listing(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


def _checkout_state() -> dict:
    """What a run could write into the checkout: results, leaderboards, study files, and any
    new top-level entry (build/, *.egg-info, ...). Source edits are not its business."""
    return {"top": sorted(p.name for p in REPO.iterdir()),
            **{d: _listing(REPO / d) for d in ("results", "leaderboards", "studies")}}


def _env(project: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMGBENCH_") and k != "PYTHONPATH"}
    env["HOME"] = str(project)  # nothing may go to a user folder either
    return env


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sdist")
    src = tmp / "src"
    shutil.copytree(REPO, src, ignore=_NOT_SOURCE)
    # `python -m build` is not installed (offline CI); setuptools' own sdist makes the same archive.
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp / "dist")], cwd=src, check=True,
                   timeout=300, capture_output=True)
    (archive,) = (tmp / "dist").glob("gmgbench-*.tar.gz")
    return archive


@pytest.fixture(scope="module")
def wheel(sdist, tmp_path_factory) -> Path:
    """Built from the sdist, as pip does for a source install: so the sdist must carry the assets too."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(out), str(sdist)], check=True, timeout=300)
    (whl,) = out.glob("gmgbench-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_carries_studies_profiles_examples_and_license(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("harness/_assets/studies/demo.yaml", "harness/_assets/studies/paper.yaml",
                 "harness/_assets/slurm/profiles/template.yaml", "harness/_assets/docs/examples/capacity_vae.py",
                 *(f"harness/_assets/slurm/local/{s}.sh" for s in ("common", "install", "up", "down")),
                 "harness/assets.py", "methods/builtins.py", "metrics/dci.py"):
        assert f"gmgbench/{name}" in names, name
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


@pytest.mark.slow
def test_wheel_claims_no_generic_top_level_name(wheel):
    """Everything installs under the one import name ``gmgbench``: no top-level ``harness``,
    ``methods`` or ``metrics`` that another distribution could shadow or be shadowed by."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"gmgbench", "gmgbench-0.1.0.dist-info"}, tops
    assert not any(n.startswith(("gmgbench/tests/", "gmgbench/docs/", "gmgbench/leaderboards/")) for n in names)


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300)
    # Only now the dependencies: this venv sees the test venv's packages (not its gmgbench,
    # whose editable finder is a .pth of that folder, which a plain path line does not run).
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    added = {p.name for p in site.iterdir()} - {"zz_test_deps.pth", "__pycache__"}
    assert {n for n in added if not n.startswith("_")} == {"gmgbench", "gmgbench-0.1.0.dist-info"}, added

    project = tmp_path / "project"
    project.mkdir()
    before = _checkout_state()
    gmgbench = str(venv / "bin" / "gmgbench")
    where = subprocess.run([str(py), "-c", "import gmgbench.harness as h; print(h.__file__)"], cwd=project,
                           env=_env(project), capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(venv)), where
    for generic in ("harness", "methods", "metrics"):  # the wheel claims none of these names
        probe = subprocess.run([str(py), "-c", f"import importlib.util as u; print(u.find_spec({generic!r}))"],
                               cwd=project, env=_env(project), capture_output=True, text=True, check=True)
        assert probe.stdout.strip() == "None", (generic, probe.stdout)

    version = subprocess.run([gmgbench, "--version"], cwd=project, env=_env(project), capture_output=True, text=True)
    assert version.stdout.strip() == "gmgbench 0.1.0", version

    demo = subprocess.run([gmgbench, "demo", *TINY_DEMO], cwd=project, env=_env(project), capture_output=True,
                          text=True, timeout=900)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    # --only/--set narrow the study, so its board is a labelled preview, never the study's latest.md.
    board = project / "leaderboards" / "demo" / "preview.md"
    assert board.is_file(), demo.stdout[-2000:]
    assert "beta_vae+gmg_cos_dec" in board.read_text()
    assert not (project / "leaderboards" / "demo" / "latest.md").exists()
    assert len(list((project / "results" / "demo" / "runs").glob("*.json"))) == 2
    assert f"(written to {Path('leaderboards') / 'demo' / 'preview.md'})" in demo.stdout \
        or str(board) in demo.stdout

    init = subprocess.run([gmgbench, "init", "mine"], cwd=project, env=_env(project), capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert (project / "mine" / "studies" / "demo.yaml").is_file()
    assert (project / "mine" / "slurm" / "profiles" / "template.yaml").is_file()
    assert (project / "mine" / "docs" / "examples" / "capacity_vae.py").is_file()
    assert os.access(project / "mine" / "slurm" / "local" / "up.sh", os.X_OK)

    assert _checkout_state() == before  # the checkout is untouched
    assert not (site.parent / "leaderboards").exists() and not (site / "leaderboards").exists()


def test_pyproject_lists_every_package_folder():
    """The wheel's packages are listed by hand (``gmgbench`` maps onto the checkout's root, so
    setuptools cannot find them): a new folder that is not listed would be missing from it."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {"gmgbench." + ".".join(p.parent.relative_to(REPO).parts)
               for top in ("harness", "methods", "metrics") for p in (REPO / top).rglob("__init__.py")}
    assert listed == folders


def test_init_copies_the_local_cluster_scripts_executable(tmp_path):
    """`gmgbench init` gives a project slurm/local/*.sh, runnable as docs/slurm.md §5 says."""
    from gmgbench.harness import assets

    written = assets.copy_into(tmp_path, say=lambda _: None)
    scripts = sorted(p.name for p in written if p.parent == tmp_path / "slurm" / "local")
    assert scripts == ["common.sh", "down.sh", "install.sh", "up.sh"]
    for name in scripts:
        path = tmp_path / "slurm" / "local" / name
        assert os.access(path, os.X_OK) and path.read_bytes() == (REPO / "slurm" / "local" / name).read_bytes()
