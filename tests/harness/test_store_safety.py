"""Issue 15, items 1, 2 and 5: nothing loaded from a store runs code, --force loses nothing,
corrupt files give one line naming them and ``run --repair`` moves them aside."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gmgbench.harness import checkpoints
from gmgbench.harness.cli import main
from gmgbench.harness.results import ResultsStore, StoreError
from gmgbench.harness.spec import load_spec
from gmgbench.harness.train import Interrupted, run_and_store, train_run

REPO = Path(__file__).resolve().parents[2]


class Payload:
    """Pickles as a call of ``exec`` that writes ``marker``: what a planted pickle could do."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


def _plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Payload(marker), "run": {}, "step": 1}, path)
    # The payload is live: an unsafe load would run it.
    torch.load(path, weights_only=False)
    assert marker.read_text() == "ran"
    marker.unlink()


@pytest.fixture
def one_spec(write_spec, tiny_spec):
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["seeds"] = 1
    tiny_spec["leaderboard"] = {"selection": "mig.discrete_mig"}
    return write_spec(tiny_spec)


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no error printed"
    assert "Traceback" not in err
    return lines[-1]


# -- 1. safe loading ------------------------------------------------------------------------
@pytest.fixture
def planted_model(one_spec, tmp_path):
    """A finished run whose model.pt was then replaced by a malicious pickle."""
    store_dir = tmp_path / "store"
    assert main(["run", str(one_spec), "--results", str(store_dir), "--no-leaderboard"]) == 0
    (run,) = load_spec(one_spec).runs()
    marker = tmp_path / "pwned"
    model = ResultsStore(store_dir).workdir(run.run_id) / "model.pt"
    _plant(model, marker)
    return run, store_dir, model, marker


def test_planted_model_pt_does_not_run_on_evaluate(planted_model, capsys):
    run, store_dir, model, marker = planted_model
    capsys.readouterr()
    code = main(["evaluate", run.run_id, "--results", str(store_dir), "--metrics", "mig", "--no-write"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1 and not marker.exists()
    assert str(model) in line and "refused to load" in line


def test_planted_model_pt_does_not_run_on_publish(planted_model, one_spec, tmp_path, monkeypatch):
    run, store_dir, model, marker = planted_model
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    assert main(["leaderboard", str(one_spec), "--results", str(store_dir), "--publish"]) == 0
    assert not marker.exists()
    manifest = json.loads((tmp_path / "boards" / "tiny" / "v1" / "manifest.json").read_text())
    assert any(str(model) in n and "refused to load" in n for n in manifest["figure_notes"])


def test_planted_checkpoint_does_not_run_on_resume(one_spec, tmp_path, capsys):
    store_dir = tmp_path / "store"
    (run,) = load_spec(one_spec).runs()
    marker = tmp_path / "pwned"
    ckpt = ResultsStore(store_dir).workdir(run.run_id) / "checkpoint.pt"
    _plant(ckpt, marker)
    capsys.readouterr()
    assert main(["run", str(one_spec), "--results", str(store_dir), "--no-leaderboard"]) == 1
    err = capsys.readouterr().err
    assert not marker.exists()
    assert str(ckpt) in err and "refused to load" in err and "--repair" in err


def test_checkpoint_step_hint_does_not_unpickle(tmp_path):
    marker = tmp_path / "pwned"
    _plant(tmp_path / "checkpoint.pt", marker)
    assert checkpoints.checkpoint_step(tmp_path / "checkpoint.pt") is None
    assert not marker.exists()


def test_checkpoints_hold_only_tensors_and_plain_containers(tmp_path, one_spec):
    (run,) = load_spec(one_spec).runs()
    with pytest.raises(Interrupted):
        train_run(run, tmp_path, progress=False, stop_after=1)
    for name in ("checkpoint.pt",):
        torch.load(tmp_path / name, weights_only=True)  # no allow-list needed
    train_run(run, tmp_path, progress=False)
    torch.load(tmp_path / "model.pt", weights_only=True)


def test_older_checkpoint_with_numpy_sampler_state_still_resumes(tmp_path, one_spec):
    """Checkpoints written before this change kept NumPy's RandomState tuple: still safe to load."""
    (run,) = load_spec(one_spec).runs()
    straight = train_run(run, tmp_path / "a", progress=False)
    with pytest.raises(Interrupted):
        train_run(run, tmp_path / "b", progress=False, stop_after=1)
    path = tmp_path / "b" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    rs = np.random.RandomState()
    checkpoints.set_sampler_state(rs, ckpt["sampler"])
    ckpt["sampler"] = rs.get_state()
    del ckpt["method_code"]
    torch.save(ckpt, path)
    assert train_run(run, tmp_path / "b", progress=False)["curve"] == straight["curve"]


def _write_dsprites_with(tmp_path, **overrides):
    sys.path.insert(0, str(REPO / "tests" / "data"))
    try:
        import data_formats as fmt
    finally:
        sys.path.pop(0)
    tiny, path = fmt.write_dsprites(tmp_path, np.random.RandomState(0))
    with np.load(path, allow_pickle=True) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(overrides)
    np.savez_compressed(path, **arrays)
    return tiny, path


def test_dsprites_loader_never_unpickles_metadata(tmp_path):
    marker = tmp_path / "pwned"
    meta = np.empty((), dtype=object)
    meta[()] = Payload(marker)
    tiny, path = _write_dsprites_with(tmp_path, metadata=meta)
    with np.load(path, allow_pickle=True) as data:  # the payload is live
        data["metadata"]
    assert marker.exists()
    marker.unlink()
    ds = tiny(tmp_path)
    assert ds.dataset_size == int(np.prod(tiny.factor_sizes)) and not marker.exists()


def test_dsprites_pickle_in_a_numeric_entry_is_refused_naming_the_file(tmp_path):
    from gmgbench.harness.data import DatasetError

    marker = tmp_path / "pwned"
    classes = np.empty((1,), dtype=object)
    classes[0] = Payload(marker)
    tiny, path = _write_dsprites_with(tmp_path, latents_classes=classes)
    with pytest.raises(DatasetError, match=rf"{path}\['latents_classes'\]: not a numeric array"):
        tiny(tmp_path)
    assert not marker.exists()


# -- 2. --force --------------------------------------------------------------------------------
def test_interrupted_force_leaves_the_old_run_intact(one_spec, tmp_path):
    store = ResultsStore(tmp_path / "store")
    (run,) = load_spec(one_spec).runs()
    run_and_store(run, store, progress=False)
    work = store.workdir(run.run_id)
    before = {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}
    result_before = store.result_path(run.run_id).read_bytes()
    with pytest.raises(Interrupted):
        run_and_store(run, store, force=True, progress=False, stop_after=1)
    assert store.result_path(run.run_id).read_bytes() == result_before
    assert {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()} == before
    assert not [p for p in (tmp_path / "store").rglob("*") if ".tmp" in p.name]
    # A plain rerun keeps the (intact) old run; a completed --force replaces model and result.
    assert run_and_store(run, store, progress=False) is None
    new = run_and_store(run, store, force=True, progress=False)
    assert store.read_result(run.run_id)["provenance"]["started"] == new["provenance"]["started"]
    assert new["provenance"]["started"] != json.loads(result_before)["provenance"]["started"]
    assert not store.next_workdir(run.run_id).exists()


def test_force_swap_interrupted_after_its_commit_point_is_finished_by_the_next_run(one_spec, tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "store")
    (run,) = load_spec(one_spec).runs()
    run_and_store(run, store, progress=False)
    calls = []

    def die(*a, **k):
        calls.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(ResultsStore, "finish_swap", lambda self, rid, **kw: die() if store.next_workdir(rid).joinpath(
        "result.json").exists() else False)
    with pytest.raises(KeyboardInterrupt):
        run_and_store(run, store, force=True, progress=False)
    monkeypatch.undo()
    committed = json.loads((store.next_workdir(run.run_id) / "result.json").read_text())
    from gmgbench.harness.executors import pending

    assert pending([run], store) == []  # finishes the swap
    assert store.read_result(run.run_id)["provenance"]["started"] == committed["provenance"]["started"]
    assert not store.next_workdir(run.run_id).exists()


def test_killed_checkpoint_write_leaves_no_temporary(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("gmgbench.harness.fileio.os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save({"x": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


# -- 5. corrupt files -------------------------------------------------------------------------
@pytest.mark.parametrize("content", ['{"run_id": "x", "metr', "{}", "[]"])
def test_corrupt_result_is_one_line_not_done_and_repaired(one_spec, tmp_path, capsys, content, monkeypatch):
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "boards"))
    store_dir = tmp_path / "store"
    assert main(["run", str(one_spec), "--results", str(store_dir), "--no-leaderboard"]) == 0
    store = ResultsStore(store_dir)
    (run,) = load_spec(one_spec).runs()
    path = store.result_path(run.run_id)
    path.write_text(content)
    assert not store.has_result(run.run_id) and store.result_state(run.run_id)[0] == "corrupt"
    capsys.readouterr()

    assert main(["run", str(one_spec), "--results", str(store_dir)]) == 1
    out = capsys.readouterr()
    assert str(path) in out.err and "--repair" in out.err and "Traceback" not in out.err
    assert path.read_text() == content  # nothing lost

    assert main(["leaderboard", str(one_spec), "--results", str(store_dir)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(path) in line and "--repair" in line

    assert main(["run", str(one_spec), "--results", str(store_dir), "--repair", "--no-leaderboard"]) == 0
    assert store.has_result(run.run_id)
    (moved,) = list((store_dir / "quarantine" / "runs").iterdir())
    assert moved.read_text() == content and moved.name.startswith(f"{run.run_id}.json.")


def test_status_counts_corrupt_results_and_failure_records(one_spec, tmp_path, capsys):
    store_dir = tmp_path / "store"
    store = ResultsStore(store_dir)
    a, = load_spec(one_spec).runs()
    store.result_path(a.run_id).parent.mkdir(parents=True)
    store.result_path(a.run_id).write_text("{}")
    assert main(["status", str(one_spec), "--results", str(store_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["done"] == 0 and report["counts"]["corrupt"] == 1
    row, = report["runs"]
    assert row["status"] == "corrupt" and str(store.result_path(a.run_id)) in row["note"]
    store.result_path(a.run_id).unlink()
    store.failure_path(a.run_id).parent.mkdir(parents=True)
    store.failure_path(a.run_id).write_text('{"error": "Floa')
    assert main(["status", str(one_spec), "--results", str(store_dir)]) == 0
    out = capsys.readouterr().out
    assert "0/1 done" in out and "1 corrupt" in out and str(store.failure_path(a.run_id)) in out


def test_truncated_checkpoint_names_the_file_and_repair_or_force_recover(one_spec, tmp_path, capsys):
    store_dir = tmp_path / "store"
    store = ResultsStore(store_dir)
    (run,) = load_spec(one_spec).runs()
    with pytest.raises(Interrupted):
        run_and_store(run, store, progress=False, stop_after=1)
    ckpt = store.workdir(run.run_id) / "checkpoint.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(["run", str(one_spec), "--results", str(store_dir), "--no-leaderboard"]) == 1
    err = capsys.readouterr().err
    assert f"{ckpt}: corrupt or truncated checkpoint" in err and "--repair" in err
    # --force does not read the old checkpoint at all
    assert main(["run", str(one_spec), "--results", str(store_dir), "--no-leaderboard", "--force"]) == 0
    assert store.has_result(run.run_id)
    # --repair moves a truncated checkpoint aside
    store.result_path(run.run_id).unlink()
    ckpt.write_bytes(data[:100])
    assert main(["run", str(one_spec), "--results", str(store_dir), "--no-leaderboard", "--repair"]) == 0
    assert store.has_result(run.run_id)
    assert [p.read_bytes() for p in (store_dir / "quarantine").rglob("checkpoint.pt.*")] == [data[:100]]


def test_store_error_is_a_one_line_message(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(StoreError) as info:
        checkpoints.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


# -- 6. signals ------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_parent_stops_workers_which_checkpoint(write_spec, tiny_spec, tmp_path, sig):
    tiny_spec["train"].update(steps=100000, checkpoint_every=100000, log_every=1000)
    spec_path = write_spec(tiny_spec)
    store_dir = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gmgbench.harness.cli", "run", str(spec_path), "--results", str(store_dir),
                             "--workers", "2", "--no-leaderboard"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(store_dir.glob("work/*/.lock"))) < 2:
            time.sleep(0.5)
        time.sleep(3)  # inside training
        workers = [c for c in _children(proc.pid)
                   if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2
        os.kill(proc.pid, sig)  # the parent alone, as `kill` or a scheduler does
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    time.sleep(1)
    alive = [w for w in workers if Path(f"/proc/{w}").exists()
             and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"]
    assert not alive, out
    steps = [int(torch.load(p, weights_only=True)["step"]) for p in store_dir.glob("work/*/checkpoint.pt")]
    assert len(steps) == 2 and all(0 < s < 100000 for s in steps), out
    assert "stopped" in out


@pytest.mark.slow
def test_sigterm_to_a_single_process_run_checkpoints_and_exits(write_spec, tiny_spec, tmp_path):
    tiny_spec["train"].update(steps=100000, checkpoint_every=100000, log_every=1000)
    spec_path = write_spec(tiny_spec)
    store_dir = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "gmgbench.harness.cli", "run", str(spec_path), "--results", str(store_dir),
                             "--no-leaderboard"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(store_dir.glob("work/*/.lock")):
            time.sleep(0.5)
        time.sleep(3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    steps = [int(torch.load(p, weights_only=True)["step"]) for p in store_dir.glob("work/*/checkpoint.pt")]
    assert len(steps) == 1 and 0 < steps[0] < 100000, out
