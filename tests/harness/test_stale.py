"""Issue 15, item 3: results of two versions of a method are never mixed silently."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gmgbench.harness.cli import main
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from gmgbench.harness.train import Interrupted, StaleCheckpoint, run_and_store
from gmgbench.methods import registry, source

REPO = Path(__file__).resolve().parents[2]

PLUGIN = '''
from dataclasses import dataclass

from gmgbench.methods.base import Regulariser
from gmgbench.methods.registry import register

SCALE = 1.0


@register
class ToyReg(Regulariser):
    """mean of mu squared, scaled."""

    name = "toy_reg"

    @dataclass(frozen=True)
    class Config(Regulariser.Config):
        pass

    def __call__(self, out):
        term = SCALE * (out.mu ** 2).mean()
        return term, {}
'''


@pytest.fixture(autouse=True)
def _private_registry():
    with registry.isolated():  # the toy plugin is forgotten after each test
        yield


@pytest.fixture
def plugin_spec(tmp_path, write_spec, tiny_spec):
    (tmp_path / "toy_reg.py").write_text(PLUGIN)
    tiny_spec["plugins"] = ["toy_reg.py"]
    tiny_spec["methods"] = [{"label": "toy", "objective": "beta_vae", "params": {"beta": 1.0},
                             "regularisers": [{"name": "toy_reg", "params": {"weight": 1.0}}]}]
    tiny_spec["seeds"] = [0]
    tiny_spec["leaderboard"] = {"selection": "mig.discrete_mig"}

    def spec(seeds=(0,)):
        tiny_spec["seeds"] = list(seeds)
        return write_spec(tiny_spec)

    return spec


def _edit_helper(tmp_path):
    path = tmp_path / "toy_reg.py"
    path.write_text(path.read_text().replace("SCALE = 1.0", "SCALE = 1000.0  # edited"))


def test_method_code_of_a_builtin_is_its_module_and_what_it_imports():
    files = source.method_code("gmg", "regulariser")["files"]
    assert {"methods/regularisers/gmg.py", "methods/regularisers/geometric.py", "methods/ot/torch_gw.py",
            "methods/ot/ott_gw.py", "methods/ot/costs.py"} <= set(files)
    assert not {"methods/base.py", "methods/registry.py", "methods/architectures.py"} & set(files)
    assert set(source.method_code("beta_vae", "objective")["files"]) == {"methods/__init__.py", "methods/beta_vae.py"}


def test_changed_files_names_the_file_that_changed():
    code = source.method_code("gmg", "regulariser")
    assert source.changed_files(code) == []
    code["files"]["methods/ot/torch_gw.py"] = "0" * 16
    assert source.changed_files(code) == ["methods/ot/torch_gw.py"]


def test_the_import_prefix_does_not_change_a_method_hash(tmp_path):
    """A file hashes with the ``gmgbench.`` prefix of gmgbench's own packages taken out, so
    moving the packages under that name made no stored result stale; any other edit does."""
    old = "from methods.base import Regulariser\nimport metrics\nx = methods.ot.pairwise_cost  # see metrics.dci\n"
    new = ("from gmgbench.methods.base import Regulariser\nfrom gmgbench import metrics\n"
           "x = gmgbench.methods.ot.pairwise_cost  # see gmgbench.metrics.dci\n")
    assert source.canonical_bytes(new.encode()) == old.encode()
    hashes = []
    for i, text in enumerate((old, new, new.replace("# see", "# read"), new.replace("gmgbench.methods", "gmgbenchx.methods"))):
        (tmp_path / f"f{i}.py").write_text(text)
        hashes.append(source.file_hash_of(tmp_path / f"f{i}.py"))
    assert hashes[0] == hashes[1] and len({hashes[1], hashes[2], hashes[3]}) == 3


def test_run_and_status_name_stale_runs(plugin_spec, tmp_path, capsys):
    spec_path, store_dir = plugin_spec(), tmp_path / "store"
    with registry.isolated():
        assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    (run,) = load_spec(spec_path).runs()
    result = ResultsStore(store_dir).read_result(run.run_id)
    assert set(result["method_code"]["toy_reg"]["files"]) == {"toy_reg.py", "methods/__init__.py"}
    capsys.readouterr()
    _edit_helper(tmp_path)
    with registry.isolated():
        assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    err = capsys.readouterr().err
    assert f"stale: {run.name} ({run.run_id})" in err and "toy_reg: toy_reg.py changed" in err
    assert main(["status", str(spec_path), "--results", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "stale (1 done" in out and run.run_id in out and "toy_reg.py changed" in out


def _checkpoint_then_edit(plugin_spec, tmp_path):
    """A run stopped after its first checkpoint, then its plugin's helper file edited."""
    spec_path, store = plugin_spec(), ResultsStore(tmp_path / "store")
    with registry.isolated():
        (run,) = load_spec(spec_path).runs()
        with pytest.raises(Interrupted):
            run_and_store(run, store, progress=False, stop_after=1)
    _edit_helper(tmp_path)
    return spec_path, store, run


def test_resume_refuses_changed_method_code_unless_forced(plugin_spec, tmp_path):
    spec_path, store, run = _checkpoint_then_edit(plugin_spec, tmp_path)
    with registry.isolated():
        (run,) = load_spec(spec_path).runs()
        with pytest.raises(StaleCheckpoint, match=r"checkpoint\.pt: written by other method code \(toy_reg: "
                                                  r"toy_reg\.py changed\).*--force"):
            run_and_store(run, store, progress=False)
        assert not store.has_result(run.run_id)
        result = run_and_store(run, store, progress=False, force=True)
    assert store.has_result(run.run_id) and result["method_code"]["toy_reg"]["files"]["toy_reg.py"] == \
        source.method_code.__globals__["_file_sha"](tmp_path / "toy_reg.py", *_stamp(tmp_path / "toy_reg.py"))


def _stamp(path):
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def test_leaderboard_refuses_to_average_two_code_versions(plugin_spec, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    store_dir = tmp_path / "store"
    with registry.isolated():
        assert main(["run", str(plugin_spec((0,))), "--results", str(store_dir), "--no-leaderboard"]) == 0
    _edit_helper(tmp_path)
    spec_path = plugin_spec((0, 1))
    with registry.isolated():
        assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(spec_path), "--results", str(store_dir)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "toy [" in err[0] and "2 versions of the method code" in err[0] and "--allow-stale" in err[0]
    assert main(["leaderboard", str(spec_path), "--results", str(store_dir), "--allow-stale"]) == 0
    board = (tmp_path / "boards" / "tiny" / "latest.md").read_text()
    assert "mixed code: 2 versions averaged (--allow-stale)" in board


def test_committed_cpu_repro_results_aggregate_and_v1_rebuilds(capsys):
    from gmgbench.harness import leaderboard

    # v1's own spec: studies/cpu-repro.yaml has calibrated lambda grids since (new run ids)
    manifest = json.loads((REPO / "leaderboards" / "cpu-repro" / "v1" / "manifest.json").read_text())
    spec = leaderboard.spec_from_dict(manifest["spec"])
    board = leaderboard.build(spec, ResultsStore(REPO / "results" / "cpu-repro"))
    assert int((board.agg.runs["status"] == "done").sum()) == 24
    assert (board.agg.table["code_versions"] == 1).all()
    same, report = leaderboard.verify(REPO / "leaderboards" / "cpu-repro" / "v1")
    assert same, report


def test_older_results_are_judged_by_their_builtin_file_without_importing_methods(tmp_path):
    """Results written before method_code recorded one file's hash per method (method_source)."""
    import subprocess
    import sys

    from gmgbench.methods.source import file_hash

    now = file_hash("methods/beta_vae.py")
    code = ("import json, sys; from gmgbench.harness.stale import recorded_changes; "
            "print(json.dumps([recorded_changes({'method_source': {'beta_vae': h}}) for h in sys.argv[1:]])); "
            "print(sorted(m for m in sys.modules if m in ('torch', 'gmgbench.methods.beta_vae')))")
    out = subprocess.run([sys.executable, "-c", code, now, "0" * 16], capture_output=True, text=True, cwd=REPO,
                         env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, timeout=120)
    same, changed = json.loads(out.stdout.splitlines()[0])
    assert same == [] and changed == ["beta_vae: methods/beta_vae.py changed"]
    assert out.stdout.splitlines()[1] == "[]", out.stdout  # status stays light


# -- issue 27: stale follows the plugin the spec loads now, by content ----------------------
def _copy_project(src: Path, dst: Path) -> Path:
    import shutil

    dst.mkdir()
    for name in ("study.yaml", "toy_reg.py"):
        shutil.copy2(src / name, dst / name)
    return dst / "study.yaml"


def test_stale_follows_the_plugin_a_copied_project_loads(plugin_spec, tmp_path, capsys):
    spec_path, store_dir = plugin_spec(), tmp_path / "store"
    with registry.isolated():
        assert main(["run", str(spec_path), "--results", str(store_dir), "--no-leaderboard"]) == 0
    copy = _copy_project(tmp_path, tmp_path / "copy")
    _edit_helper(tmp_path / "copy")  # the copy's plugin changes, the original does not
    capsys.readouterr()
    with registry.isolated():
        assert main(["run", str(copy), "--results", str(store_dir), "--no-leaderboard"]) == 0
    (run,) = load_spec(spec_path).runs()
    assert f"stale: {run.name} ({run.run_id})" in capsys.readouterr().err
    assert main(["status", str(copy), "--results", str(store_dir)]) == 0
    assert "toy_reg.py changed" in capsys.readouterr().out


def test_an_unchanged_copy_is_not_stale_once_the_original_is_gone(plugin_spec, tmp_path, capsys):
    spec_path, store = plugin_spec(), ResultsStore(tmp_path / "store")
    with registry.isolated():
        assert main(["run", str(spec_path), "--results", str(store.root), "--no-leaderboard"]) == 0
        run, other = load_spec(plugin_spec((0, 1))).runs()  # seed 0 done, seed 1 not
        with pytest.raises(Interrupted):  # a checkpoint written from the original folder
            run_and_store(other, store, progress=False, stop_after=1)
    copy = _copy_project(tmp_path, tmp_path / "copy")
    (tmp_path / "toy_reg.py").unlink()
    capsys.readouterr()
    with registry.isolated():
        assert main(["run", str(copy), "--results", str(store.root), "--no-leaderboard"]) == 0
    err = capsys.readouterr().err
    assert "stale" not in err and "other method code" not in err  # the copy resumed the checkpoint
    assert store.has_result(run.run_id) and store.has_result(other.run_id)
    assert main(["status", str(copy), "--results", str(store.root)]) == 0
    assert "stale" not in capsys.readouterr().out


def test_repair_moves_a_stale_checkpoint_aside_and_run_names_a_command_that_works(plugin_spec, tmp_path, capsys,
                                                                                 monkeypatch):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    spec_path, store, run = _checkpoint_then_edit(plugin_spec, tmp_path)
    argv = ["run", str(spec_path), "--results", str(store.root), "--no-leaderboard"]
    with registry.isolated():
        assert main(argv) == 1
        assert "written by other method code" in capsys.readouterr().err
        assert main([*argv, "--repair"]) == 0  # --repair, as the summary advises, does act
    assert store.has_result(run.run_id)
    (moved,) = (store.root / "quarantine").rglob("checkpoint.pt.*")
    # Two code versions in one cell: `run`'s board names a command that accepts --allow-stale.
    with registry.isolated():
        assert main(["run", str(plugin_spec((0,))), "--results", str(tmp_path / "mixed"), "--no-leaderboard"]) == 0
    (tmp_path / "toy_reg.py").write_text(PLUGIN)
    capsys.readouterr()
    with registry.isolated():
        assert main(["run", str(plugin_spec((0, 1))), "--results", str(tmp_path / "mixed")]) == 1
    err = capsys.readouterr().err
    assert "`gmgbench leaderboard STUDY --allow-stale`" in err and "pass --allow-stale" not in err
