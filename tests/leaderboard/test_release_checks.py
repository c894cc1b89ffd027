"""Issue 27 (part B): ``--rebuild`` checks ``manifest.json`` itself, a damaged manifest or a
stray version folder is one line with a command that works, and a release built outside a
git checkout says why its commit is unknown."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gmgbench.harness import leaderboard
from gmgbench.harness.cli import main
from lb_helpers import toy_store


def _edit_manifest(v1: Path, edit) -> None:
    path = v1 / "manifest.json"
    path.chmod(0o644)
    m = json.loads(path.read_text())
    path.write_text(json.dumps(edit(m), indent=1, sort_keys=True) + "\n")


def _edit_spec(m):
    m["spec"]["description"] = "edited after publication"
    return m


def _drop_a_result(m):
    m["results"] = m["results"][1:]
    return m


@pytest.mark.parametrize("edit, needle", [(_edit_spec, "the recorded spec differs from its spec_sha256"),
                                          (_drop_a_result, "its results list differs from data/runs.parquet")])
def test_rebuild_checks_the_manifest_itself(released, capsys, edit, needle):
    spec, store, root, v1 = released
    _edit_manifest(v1, edit)
    capsys.readouterr()
    assert main(["leaderboard", "--rebuild", str(v1)]) == 1
    out = capsys.readouterr()
    assert f"{v1 / 'manifest.json'}: {needle}" in out.out and "identical" not in out.out


def test_a_manifest_holding_a_list_is_one_line(released, capsys):
    spec, store, root, v1 = released
    _edit_manifest(v1, lambda m: [m])
    capsys.readouterr()
    assert main(["leaderboard", "--rebuild", str(v1)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"{v1 / 'manifest.json'}: not a release manifest (a JSON list" in err


def test_a_stray_version_folder_with_files_is_named_with_a_command(tmp_path):
    spec, store = toy_store(tmp_path)
    root = tmp_path / "lb"
    stray = root / "toy" / "v1"
    stray.mkdir(parents=True)
    (stray / "leaderboard.md").write_text("copied by hand\n")
    with pytest.raises(leaderboard.release.ReleaseExists) as err:
        leaderboard.publish(spec, store, root=root, figures=False, command="x")
    msg = str(err.value)
    assert f"{stray}: a folder without manifest.json" in msg and f"mv {stray} {root / 'toy' / 'v1.stray'}" in msg
    assert "next free version: v1" not in msg
    stray.rename(root / "toy" / "v1.stray")  # what the message says
    assert leaderboard.publish(spec, store, root=root, figures=False, command="x") == stray


def test_rebuild_with_publish_is_a_usage_error(released, capsys):
    spec, store, root, v1 = released
    assert main(["leaderboard", "--rebuild", str(v1), "--publish"]) == 2
    err = capsys.readouterr().err
    assert "--rebuild RELEASE checks a published release and publishes nothing" in err
    assert not (root / "toy" / "v2").exists()


def test_a_commit_outside_a_git_checkout_says_why_it_is_unknown(tmp_path):
    import shutil

    here = Path(__file__).resolve().parents[2]
    for package in ("harness", "methods", "metrics"):  # the gmgbench namespace, outside any checkout
        shutil.copytree(here / package, tmp_path / "gmgbench" / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "-c", "from gmgbench.harness.results import provenance; "
                          "print(provenance()['git_commit'])"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.stdout.strip() == ("unknown (gmgbench runs from an installed package, not a git checkout; "
                                  "see packages.gmgbench)"), out.stderr
