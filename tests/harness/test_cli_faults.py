"""Issue 27 (part B): faults and bad input that gave a traceback give one line naming the
file or key (and what to do): a full disk, a read-only folder, a closed pipe, a file where a
folder belongs, a malformed ``--callback``, an over-long study name.

A full disk is simulated by a file system whose every write fails with ENOSPC (``os.fdopen``
patched where gmgbench writes), or by matplotlib failing so; on a real tiny tmpfs too when
the tests run as root (else skipped)."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gmgbench.harness.cli import main
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec

REPO = Path(__file__).resolve().parents[2]


class _FullFile:
    """A file on a full disk: opening works, every write fails as the kernel's would."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


@pytest.fixture
def full_disk(monkeypatch):
    """From the call on, every file gmgbench writes meets a full disk."""
    real = os.fdopen

    def fill():
        monkeypatch.setattr("gmgbench.harness.fileio.os.fdopen", lambda fd, *a, **k: _FullFile(real(fd, *a, **k)))

    return fill


@pytest.fixture
def one_spec(write_spec, tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["seeds"] = 1
    return write_spec(tiny_spec)


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- a full disk ------------------------------------------------------------------------------
def test_full_disk_in_a_checkpoint_names_the_file_and_claims_no_failure_record(one_spec, tmp_path, capsys,
                                                                               full_disk):
    full_disk()
    store = tmp_path / "store"
    assert main(["run", str(one_spec), "--results", str(store), "--no-leaderboard"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "inline_container" not in err
    assert "checkpoint.pt: no space left on device" in err and "(no failure record could be written)" in err, err
    assert not [p for p in store.rglob("*") if p.is_file() and p.name != ".lock"]  # nothing partial


def test_full_disk_in_evaluate_and_the_latest_board_leaves_the_old_files(one_spec, tmp_path, capsys, full_disk):
    store = tmp_path / "store"
    assert main(["run", str(one_spec), "--results", str(store)]) == 0
    (run,) = load_spec(one_spec).runs()
    before, boards = _files(store), _files(tmp_path / "boards")
    full_disk()
    capsys.readouterr()
    assert main(["evaluate", run.run_id, "--results", str(store), "--metrics", "mig", "--force"]) == 1
    assert f"{ResultsStore(store).result_path(run.run_id)}: no space left on device" in _one_line(capsys)
    assert main(["leaderboard", str(one_spec), "--results", str(store)]) == 1
    assert "no space left on device" in _one_line(capsys)
    assert _files(store) == before and _files(tmp_path / "boards") == boards  # no 0-byte latest/runs.csv


def test_full_disk_while_publishing_releases_nothing(one_spec, tmp_path, capsys, monkeypatch):
    store, boards = tmp_path / "store", tmp_path / "boards"
    assert main(["run", str(one_spec), "--results", str(store), "--no-leaderboard"]) == 0

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("gmgbench.harness.leaderboard.figures._save", full)  # the figures fill the disk
    capsys.readouterr()
    assert main(["leaderboard", str(one_spec), "--results", str(store), "--publish"]) == 1
    line = _one_line(capsys)
    assert f"{boards / 'tiny' / 'v1'}: no space left on device" in line and "nothing was published" in line
    assert not (boards / "tiny").exists() or not [p for p in (boards / "tiny").iterdir() if "v1" in p.name]
    monkeypatch.undo()
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(boards))
    assert main(["leaderboard", str(one_spec), "--results", str(store), "--publish"]) == 0  # v1 is still free
    assert main(["leaderboard", "--rebuild", str(boards / "tiny" / "v1")]) == 0


@pytest.fixture
def tiny_tmpfs(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)],
                                           capture_output=True).returncode:
        pytest.skip("a real full disk needs root to mount a tiny tmpfs")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_real_full_disk_while_publishing_leaves_no_partial_release(one_spec, tmp_path, capsys, tiny_tmpfs):
    store = tmp_path / "store"
    assert main(["run", str(one_spec), "--results", str(store), "--no-leaderboard"]) == 0
    capsys.readouterr()
    code = main(["leaderboard", str(one_spec), "--results", str(store), "--publish", "--root", str(tiny_tmpfs)])
    assert code == 1 and "no space left on device" in _one_line(capsys)
    assert [p.name for p in (tiny_tmpfs / "tiny").iterdir()] == []
    assert not [p for p in tiny_tmpfs.rglob("*") if p.is_file() and p.stat().st_size == 0]


# -- read-only folders, files where folders belong ---------------------------------------------
@pytest.fixture
def read_only(tmp_path):
    """A read-only folder: a read-only tmpfs as root (root ignores mode bits), else mode 0555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                          capture_output=True).returncode:
            pytest.skip("as root, a read-only folder needs a read-only mount")
        yield folder
        subprocess.run(["umount", "-l", str(folder)], check=False)
    else:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)


@pytest.mark.parametrize("command", ["run", "init", "demo", "leaderboard"])
def test_read_only_folders_are_one_line(one_spec, tmp_path, capsys, read_only, command, monkeypatch):
    if command == "run":
        argv = ["run", str(one_spec), "--results", str(read_only / "store")]
    elif command == "init":
        argv = ["init", str(read_only / "project")]
    elif command == "demo":
        argv = ["--project", str(read_only), "demo", "--set", "train.steps=1"]
    else:
        assert main(["run", str(one_spec), "--results", str(tmp_path / "store"), "--no-leaderboard"]) == 0
        capsys.readouterr()
        monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(read_only))
        argv = ["leaderboard", str(one_spec), "--results", str(tmp_path / "store")]
    assert main(argv) == 1
    line = _one_line(capsys)
    assert str(read_only) in line and "cannot write here" in line and "--project DIR" in line


def test_init_onto_a_file_and_project_at_a_file_are_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert main(["init", str(afile)]) == 1
    assert f"{afile}: the project folder must be a folder" in _one_line(capsys)
    assert main(["--project", str(afile), "status", "x.yaml"]) == 2
    assert f"--project {afile}: not a folder" in _one_line(capsys)
    assert afile.read_text() == "mine"


# -- a closed pipe, bad names ---------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["methods"], ["status", "studies/demo.yaml"], ["leaderboard", "studies/demo.yaml"]])
def test_a_reader_that_leaves_early_is_no_error(argv, tmp_path):
    """``gmgbench status | head -1``: the reader has gone before the output is written (its end of
    the pipe is closed before gmgbench starts, so every write meets a broken pipe)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "GMGBENCH_PROJECT": str(tmp_path)}
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "gmgbench.harness.cli", *argv], stdout=write, stderr=subprocess.PIPE,
                              cwd=REPO, env=env, text=True, timeout=300)
    finally:
        os.close(write)
    assert proc.stderr == "" and proc.returncode == 141, proc.stderr


@pytest.mark.parametrize("name", [":attr", "..x:y", "x:", "a b:c"])
def test_a_malformed_callback_is_one_line(one_spec, name, capsys):
    assert main(["run", str(one_spec), "--callback", name, "--no-leaderboard"]) == 1
    assert f"--callback {name!r}: expected module:attr" in _one_line(capsys)


def test_a_malformed_callback_in_the_spec_is_one_line(write_spec, tiny_spec, capsys):
    tiny_spec["callbacks"] = ["..x:y"]
    path = write_spec(tiny_spec)
    assert main(["run", str(path), "--no-leaderboard"]) == 1
    assert f"{path}: callbacks[0]: '..x:y': not module:attr" in _one_line(capsys)


@pytest.mark.parametrize("name, ok", [("a" * 300, False), ("2024-study", True), ("-x", False), ("_x", False)])
def test_study_names_follow_the_rule_their_message_states(write_spec, tiny_spec, capsys, name, ok):
    tiny_spec["name"] = name
    code = main(["status", str(write_spec(tiny_spec))])
    if ok:
        assert code == 0
    else:
        line = _one_line(capsys)
        assert code == 1 and ": name: start with a letter or digit" in line and "at most 100 characters" in line
