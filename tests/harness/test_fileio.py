"""The one way each of loading, atomically writing and locking a file, and the one
unknown-key check (harness/fileio.py, harness/errors.py)."""
from __future__ import annotations

import os
import stat

import pytest

from gmgbench.harness.errors import UserError, check_keys, did_you_mean
from gmgbench.harness.fileio import atomic_write, atomic_write_json, file_lock, load_json, load_yaml


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_gives_the_mode_the_umask_allows(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert load_json(tmp_path / "a.json") == {"x": 1}


def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def boom(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


class _Mine(UserError):
    pass


def test_loaders_name_the_file_in_one_line(tmp_path):
    with pytest.raises(_Mine, match=r"nope\.yaml: study spec not found; see x$"):
        load_yaml(tmp_path / "nope.yaml", what="study spec", error=_Mine, hint="see x")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(UserError) as err:
        load_yaml(tmp_path / "bad.yaml")
    assert str(err.value).startswith(f"{tmp_path / 'bad.yaml'}: not valid YAML") and "\n" not in str(err.value)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match=r"bad\.json: corrupt JSON .*; move it away"):
        load_json(tmp_path / "bad.json", hint="move it away")


def test_file_lock_is_exclusive_and_released(tmp_path):
    lock = tmp_path / "sub" / ".lock"
    with file_lock(lock) as first:
        with file_lock(lock) as second:
            assert first and not second
    with file_lock(lock) as again:
        assert again


def test_one_did_you_mean_policy():
    assert did_you_mean("trian", ["train", "seeds"]) == " (did you mean 'train'?)"
    assert did_you_mean("dci.disentanglment", ["dci.disentanglement", "mig.discrete_mig"]) == \
        " (did you mean 'dci.disentanglement'?)"
    assert did_you_mean("zzz", ["train", "seeds"]) == ""
    with pytest.raises(_Mine, match=r"^f\.yaml: train\.stpes: unknown key \(did you mean 'steps'\?\); valid keys: lr, steps$"):
        check_keys("f.yaml: train.", {"stpes": 1}, ["steps", "lr"], error=_Mine)
    check_keys("f.yaml: ", {"steps": 1}, ["steps"])  # a valid key passes
