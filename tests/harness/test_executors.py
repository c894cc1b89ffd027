from __future__ import annotations

import os
import sys

import pytest

from gmgbench.harness.executors import pending, run_local
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec
from dist_helpers import install_distribution


def test_two_workers_store_every_result_then_skip(write_spec, tiny_spec, tmp_path):
    spec = load_spec(write_spec(tiny_spec))
    runs = spec.runs()
    store = ResultsStore(tmp_path / "store")
    outcomes = run_local(runs, store, workers=2, progress=False)
    assert sorted(o.status for o in outcomes) == ["done"] * len(runs)
    assert pending(runs, store) == []
    stored = {r["run_id"]: r for r in store.iter_results()}
    assert set(stored) == {r.run_id for r in runs}
    for run in runs:
        mig = stored[run.run_id]["metrics"]["mig"]["discrete_mig"]
        assert 0.0 <= mig <= 1.0
    again = run_local(runs, store, workers=2, progress=False)
    assert [o.status for o in again] == ["skipped"] * len(runs)


def test_one_failing_run_does_not_stop_the_others(write_spec, tiny_spec, tmp_path):
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["methods"].append({"label": "broken", "objective": "beta_vae", "params": {"beta": 1.0},
                                 "train": {"lr": 1.0e30}})
    spec = load_spec(write_spec(tiny_spec))
    store = ResultsStore(tmp_path / "store")
    outcomes = {o.name: o for o in run_local(spec.runs(), store, workers=1, progress=False)}
    failed = [o for o in outcomes.values() if o.status == "failed"]
    assert failed and all(o.name.startswith("broken") for o in failed)
    assert all(o.status == "done" for o in outcomes.values() if o.name.startswith("bvae"))
    for o in failed:
        assert not store.has_result(o.run_id)
        assert "FloatingPointError" in store.read_failure(o.run_id)["error"]


def test_a_run_held_by_another_process_is_not_trained_twice(write_spec, tiny_spec, tmp_path):
    import subprocess
    import sys
    import time

    from gmgbench.harness.executors import execute

    run = load_spec(write_spec(tiny_spec)).runs()[0]
    store = ResultsStore(tmp_path / "store")
    workdir = store.workdir(run.run_id)
    workdir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); time.sleep(60)"), str(workdir / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = execute(run, str(store.root), progress=False)
        assert out.status == "busy" and not store.has_result(run.run_id)
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert execute(run, str(store.root), progress=False).status == "done"


def test_status_shows_a_locally_running_run(write_spec, tiny_spec, tmp_path):
    import subprocess
    import sys

    from gmgbench.harness.status import collect_status, format_status

    spec = load_spec(write_spec(tiny_spec))
    run = spec.runs()[0]
    store = ResultsStore(tmp_path / "store")
    store.workdir(run.run_id).mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); "
        "print('locked', flush=True); time.sleep(60)"), str(store.workdir(run.run_id) / ".lock")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        report = collect_status(spec, store)
        assert report["counts"]["running"] == 1 and report["counts"]["missing"] == len(spec.runs()) - 1
        assert "trained by a local `gmgbench run`" in format_status(report)
    finally:
        holder.kill()
        holder.wait()
    assert collect_status(spec, store)["counts"]["running"] == 0


def test_worker_processes_exit_promptly_after_exact_dci(tmp_path):
    """A run worker that evaluated exact DCI in parallel must not linger at exit (loky's idle
    workers kept one alive for 300 s, stalling `gmgbench demo` for five minutes)."""
    import multiprocessing as mp
    import time
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        pool.submit(_parallel_dci).result()
        t0 = time.perf_counter()
    assert time.perf_counter() - t0 < 60


def _parallel_dci() -> float:
    import numpy as np

    from gmgbench.metrics.dci import dci_from_codes

    rs = np.random.RandomState(0)
    codes, factors = rs.randn(1500, 3), rs.randint(0, 3, size=(1500, 2))
    return dci_from_codes(codes[:1000], factors[:1000], codes[1000:], factors[1000:], n_jobs=2)["disentanglement"]


# -- installed plugin packages in worker processes (issue 27) -----------------------------
_L1 = """
    from gmgbench.methods.base import Regulariser
    from gmgbench.methods.registry import register
    @register
    class L1(Regulariser):
        name = "{name}"
        def __call__(self, out):
            return out.mu.abs().mean(), {{}}
    """


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A temporary site-packages on sys.path (spawned workers inherit it) and a registry
    that forgets what the test loaded."""
    from gmgbench.methods import registry

    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")]))
    before = set(sys.modules)
    with registry.isolated():
        yield path
    for name in set(sys.modules) - before:
        if name.startswith("gmgbench_ep_"):
            del sys.modules[name]


def test_entry_point_methods_train_in_worker_processes(site, write_spec, tiny_spec, tmp_path):
    """Workers spawned by --workers 2 load installed packages' methods, not only plugin files."""
    install_distribution(site, "gmgbench_ep_l1", _L1.format(name="ep_l1"), entry="l1")
    tiny_spec["methods"][0]["regularisers"] = [{"name": "ep_l1", "params": {"weight": 0.1}}]
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    spec = load_spec(write_spec(tiny_spec))
    store = ResultsStore(tmp_path / "store")
    outcomes = run_local(spec.runs(), store, workers=2, progress=False)
    assert [o.error for o in outcomes if o.status != "done"] == []
    assert len(outcomes) == 2


def test_a_broken_or_clashing_package_leaves_other_studies_alone(site, write_spec, tiny_spec, tmp_path, caplog,
                                                                  capfd):
    """An installed package that fails to import, or clashes with a built-in name, is one
    warning naming the package; a study that uses none of its methods loads and trains, and
    one that does is told which package failed."""
    from gmgbench.harness.spec import SpecError

    install_distribution(site, "gmgbench_ep_clash", _L1.format(name="hfs"), entry="clash")  # hfs is built in
    install_distribution(site, "gmgbench_ep_boom", "raise RuntimeError('plugin exploded')\n", entry="boom")
    with caplog.at_level("WARNING"):
        spec = load_spec(write_spec(tiny_spec))
    lines = [r.getMessage() for r in caplog.records if r.name == "gmgbench.methods.registry"]
    assert any(line.startswith("installed package 'gmgbench_ep_clash'") and "'hfs' is already registered" in line
               for line in lines), lines
    assert any(line.startswith("installed package 'gmgbench_ep_boom'") and "plugin exploded" in line
               for line in lines), lines
    assert all("\n" not in line for line in lines)
    tiny_spec["seeds"] = 1
    outcomes = run_local(load_spec(write_spec(tiny_spec)).runs(), ResultsStore(tmp_path / "store"),
                         workers=2, progress=False)
    assert [o.status for o in outcomes] == ["done", "done"]
    assert "gmgbench_ep_boom" not in capfd.readouterr().err  # said once, when the spec loaded, not per worker
    assert spec.runs()
    tiny_spec["methods"][0]["regularisers"] = [{"name": "dip_reg", "params": {"weight": 0.1}}]
    with pytest.raises(SpecError, match=r"unknown regulariser 'dip_reg'.*installed package 'gmgbench_ep_boom'"):
        load_spec(write_spec(tiny_spec))


# -- the worker pool under faults (issue 27) -----------------------------------------------
_KILLER = """
    import os, signal
    from dataclasses import dataclass
    from gmgbench.methods.base import Regulariser
    from gmgbench.methods.registry import register

    @register
    class DieAt(Regulariser):
        '''Kills its own process at step 2 when `die` is set: a worker the OOM killer took.'''
        name = "die_at"

        @dataclass(frozen=True)
        class Config(Regulariser.Config):
            die: bool = False

        def __call__(self, out):
            if self.cfg.die and out.step == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return out.mu.sum() * 0.0, {}
    """


def test_a_killed_worker_costs_only_its_own_run(write_spec, tiny_spec, tmp_path):
    """kill -9 of one worker: no BrokenProcessPool, the other runs finish, the dead run is
    recorded as failed (outcome and failure record) with its checkpoint kept."""
    import textwrap

    (tmp_path / "die_at.py").write_text(textwrap.dedent(_KILLER))
    tiny_spec["plugins"] = ["die_at.py"]
    tiny_spec["seeds"] = 1
    tiny_spec["methods"] = [
        {"label": "ok", "objective": "beta_vae", "params": {"beta": [1.0, 4.0, 8.0]}},
        {"label": "dies", "objective": "beta_vae", "regularisers": [{"name": "die_at", "params": {"die": True}}]},
    ]
    spec = load_spec(write_spec(tiny_spec))
    store = ResultsStore(tmp_path / "store")
    outcomes = {o.name: o for o in run_local(spec.runs(), store, workers=2, progress=False, plugins=spec.plugins)}
    assert len(outcomes) == 4
    [dead] = [o for o in outcomes.values() if o.name.startswith("dies")]
    assert dead.status == "failed" and "killed by SIGKILL" in dead.error, dead
    assert "killed by SIGKILL" in store.read_failure(dead.run_id)["error"]
    assert (store.workdir(dead.run_id) / "checkpoint.pt").is_file()  # written at step 2, kept
    assert sorted(o.status for o in outcomes.values() if o.name.startswith("ok")) == ["done"] * 3


def _alive(pid: int) -> bool:
    from pathlib import Path

    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGHUP", "SIGHUP to the group"])
def test_workers_die_with_their_parent(write_spec, tiny_spec, tmp_path, how):
    """kill -9 or SIGHUP of `gmgbench run --workers 2` (alone, or with its workers as a closed
    terminal does) leaves no orphaned worker training on, and each run checkpointed."""
    import signal
    import subprocess
    import time
    from pathlib import Path

    tiny_spec["train"].update(steps=100000, checkpoint_every=100000, log_every=1000)
    spec_path = write_spec(tiny_spec)
    store_dir = tmp_path / "store"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "gmgbench.harness.cli", "run", str(spec_path), "--results", str(store_dir),
                             "--workers", "2", "--no-leaderboard", "-q"], env={**os.environ, "PYTHONPATH": str(repo)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    workers: list[int] = []
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(store_dir.glob("work/*/.lock"))) < 2:
            time.sleep(0.5)
        time.sleep(2)  # inside training
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True).stdout
        workers = [int(x) for x in out.split()
                   if b"resource_tracker" not in Path(f"/proc/{x}/cmdline").read_bytes()]
        assert len(workers) == 2
        if how == "SIGHUP to the group":
            os.killpg(proc.pid, signal.SIGHUP)
        else:
            os.kill(proc.pid, getattr(signal, how))
        proc.wait(timeout=120)
        deadline = time.time() + 120
        while time.time() < deadline and any(_alive(w) for w in workers):
            time.sleep(0.5)
        assert not [w for w in workers if _alive(w)]
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    if how != "SIGKILL":
        assert proc.returncode == 130, proc.stdout.read()
        assert not list(store_dir.glob("failed/*.json"))  # stopped, not failed
    steps = [int(torch_step) for torch_step in _checkpoint_steps(store_dir)]
    assert len(steps) == 2 and all(0 < s < 100000 for s in steps)  # each stopped after a checkpoint


def _checkpoint_steps(store_dir):
    import torch

    return [torch.load(p, weights_only=True)["step"] for p in store_dir.glob("work/*/checkpoint.pt")]
