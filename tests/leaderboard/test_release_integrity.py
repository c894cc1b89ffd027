"""Issue 15, items 4 and 7: --rebuild verifies every file of a release; releases are readable
under the umask, survive a stray vN/, hold no absolute store path, and say when the code was dirty."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gmgbench.harness import leaderboard
from gmgbench.harness.cli import main
from gmgbench.harness.leaderboard.manifest import rebuild, versions
from lb_helpers import toy_store


def _tamper(path: Path, old: bytes, new: bytes) -> None:
    path.chmod(0o644)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))


@pytest.mark.parametrize("rel, old, new", [
    ("data/aggregate.csv", b"0.", b"9."),       # a digit in a table the markdown is not rebuilt from
    ("dlib/results.json", b"0.", b"9."),
    ("changes.md", b"First release", b"Second release"),
])
def test_rebuild_names_every_tampered_file(released, capsys, rel, old, new):
    spec, store, root, v1 = released
    assert main(["leaderboard", "--rebuild", str(v1)]) == 0
    _tamper(v1 / rel, old, new)
    capsys.readouterr()
    assert main(["leaderboard", "--rebuild", str(v1)]) == 1
    out = capsys.readouterr()
    assert f"{v1 / rel}: SHA-256 differs from manifest.json" in out.out
    assert "identical" not in out.out


def test_rebuild_names_missing_and_added_files(released, capsys):
    spec, store, root, v1 = released
    (v1 / "data" / "ranks.csv").unlink()
    (v1 / "extra.md").write_text("planted\n")
    assert main(["leaderboard", "--rebuild", str(v1)]) == 1
    out = capsys.readouterr().out
    assert f"{v1 / 'data' / 'ranks.csv'}: listed in manifest.json but missing" in out
    assert f"{v1 / 'extra.md'}: not listed in manifest.json" in out


def test_rebuild_names_a_tampered_runs_table_without_a_traceback(released, capsys):
    spec, store, root, v1 = released
    path = v1 / "data" / "runs.parquet"
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b"x")
    assert main(["leaderboard", "--rebuild", str(v1)]) == 1
    out = capsys.readouterr()
    assert f"{path}: SHA-256 differs" in out.out and "Traceback" not in out.err


def test_files_honour_the_umask(tmp_path, monkeypatch):
    old = os.umask(0o022)
    try:
        spec, store = toy_store(tmp_path / "a")
        v1 = leaderboard.publish(spec, store, root=tmp_path / "lb", figures=False, command="x")
        result = next((store.root / "runs").glob("*.json"))
        assert stat.S_IMODE(result.stat().st_mode) == 0o644
        for p in [*v1.rglob("*"), v1.parent / "LATEST", v1.parent / "CHANGELOG.md"]:
            if p.is_file():
                mode = stat.S_IMODE(p.stat().st_mode)
                assert mode & 0o044 == 0o044, (p, oct(mode))  # colleagues can read it
                if p.parent != v1.parent:
                    assert mode & 0o222 == 0, (p, oct(mode))  # a release is read-only
        os.umask(0o077)
        spec, store = toy_store(tmp_path / "b")
        v1 = leaderboard.publish(spec, store, root=tmp_path / "lb2", figures=False, command="x")
        assert stat.S_IMODE((v1 / "leaderboard.md").stat().st_mode) == 0o400
    finally:
        os.umask(old)


def test_a_stray_empty_version_folder_does_not_block_publishing(tmp_path):
    spec, store = toy_store(tmp_path)
    root = tmp_path / "lb"
    (root / "toy" / "v1").mkdir(parents=True)  # e.g. a mkdir by hand
    assert versions(root / "toy") == []
    v1 = leaderboard.publish(spec, store, root=root, figures=False, command="x")
    assert v1 == root / "toy" / "v1" and (v1 / "manifest.json").is_file()
    (root / "toy" / "v3").mkdir()
    v2 = leaderboard.publish(spec, store, root=root, figures=False, command="x")
    assert v2 == root / "toy" / "v2"
    v3 = leaderboard.publish(spec, store, root=root, figures=False, command="x")
    assert v3 == root / "toy" / "v3" and (root / "toy" / "LATEST").read_text() == "v3\n"


def test_leaderboard_md_holds_no_absolute_results_path(tmp_path, monkeypatch):
    from gmgbench.harness.cli import build_parser
    from gmgbench.harness.commands.boards import _leaderboard_command

    spec, store = toy_store(tmp_path / "work")
    monkeypatch.chdir(tmp_path)
    inside, outside = str(store.root.resolve()), "/srv/shared/alice/results/toy"
    for given, shown in ((inside, "work/"), (outside, ".../toy")):
        args = build_parser().parse_args(["leaderboard", "studies/toy.yaml", "--results", given, "--publish"])
        command = _leaderboard_command(args)
        assert given not in command and f"--results {shown}" in command
    v1 = leaderboard.publish(spec, store, root=tmp_path / "lb", figures=False, command=command)
    md = (v1 / "leaderboard.md").read_text()
    assert outside not in md and str(tmp_path) not in md


def test_a_release_from_a_dirty_tree_says_so_in_its_header(released, monkeypatch, tmp_path):
    from gmgbench.harness import results

    spec, store, root, v1 = released
    monkeypatch.setattr(results, "_CODE_COMMIT", "abc1234-dirty")
    v2 = leaderboard.publish(spec, store, root=root, figures=False, command="x")
    head = (v2 / "leaderboard.md").read_text().splitlines()[:4]
    assert head[2].startswith("> **Published from uncommitted code.**") and "abc1234-dirty" in head[2]
    assert rebuild(v2) == (v2 / "leaderboard.md").read_text()
    monkeypatch.setattr(results, "_CODE_COMMIT", "abc1234")
    v3 = leaderboard.publish(spec, store, root=root, figures=False, command="x")
    assert "uncommitted" not in (v3 / "leaderboard.md").read_text()
    # Manifests without the record (older releases) rebuild without the header, as published.
    m = json.loads((v2 / "manifest.json").read_text())
    assert m["code_dirty"] is True
