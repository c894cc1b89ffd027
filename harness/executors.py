"""Where runs execute: here, in N worker processes (``gmgbench run``).

The unit of work is :func:`execute`, one run from spec to stored result; the Slurm
launcher submits the same function, so local and cluster runs share every step.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import threading
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from harness.fileio import file_lock
from harness.results import ResultsStore
from harness.spec import RunSpec

__all__ = ["execute", "run_local", "pending", "Outcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    run_id: str
    name: str
    # done | skipped (result existed) | busy (another process has it) | failed
    # | corrupt (a file of the run does not load; --repair) | stopped (by a signal, checkpointed)
    status: str
    error: str = ""


def pending(runs: list[RunSpec], store: ResultsStore, force: bool = False) -> list[RunSpec]:
    for r in runs:  # a --force swap that was committed but interrupted: finish it first
        store.finish_swap(r.run_id)
    return list(runs) if force else [r for r in runs if not store.has_result(r.run_id)]


def execute(run: RunSpec, store_root: str, force: bool = False, progress=True,
            plugins: tuple[str, ...] = (), num_threads: int = 0, callbacks: tuple = (), repair: bool = False) -> Outcome:
    """Run one training run and store its result. Safe to call in a fresh process.

    ``progress`` is what :func:`harness.callbacks.run_hooks` takes; ``callbacks`` are
    ``(name, params)`` of run callbacks (TensorBoard, a tracker's plugin)."""
    from harness import train
    from harness.results import StoreError
    from harness.train import Interrupted, run_and_store
    from methods import registry

    if train.stop_requested():  # a signal came while this run waited in a worker's queue
        return Outcome(run.run_id, run.name, "stopped", "not started")
    # A fresh process (a worker, a Slurm job) has loaded neither the study's plugin files nor
    # installed packages' methods: both, in the order load_spec takes them. A broken package
    # is a warning there, as it was when the spec loaded; a run that needs it fails by name.
    try:
        for p in plugins:
            registry.load_plugin_file(p)
        registry.load_entry_points()
    except registry.PluginError as err:  # a plugin file edited into a broken state since the spec loaded
        return Outcome(run.run_id, run.name, "failed", str(err))
    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
    store = ResultsStore(store_root)
    with run_lock(store.workdir(run.run_id)) as held:
        if not held:
            return Outcome(run.run_id, run.name, "busy", "another process is training this run")
        try:
            result = run_and_store(run, store, force=force, progress=progress, callbacks=callbacks, repair=repair)
        except Interrupted as err:
            return Outcome(run.run_id, run.name, "stopped", str(err))
        except StoreError as err:
            return Outcome(run.run_id, run.name, "corrupt", str(err))
        except Exception as err:  # noqa: BLE001 - reported per run, the others go on
            log.debug("%s failed:\n%s", run.name, traceback.format_exc())
            return Outcome(run.run_id, run.name, "failed", f"{type(err).__name__}: {err}")
    return Outcome(run.run_id, run.name, "skipped" if result is None else "done")


@contextlib.contextmanager
def run_lock(workdir: Path):
    """Hold ``workdir/.lock`` while a run trains, so two ``gmgbench run`` on one store
    never train the same run twice. The OS drops the lock when its process dies, so a
    crashed or killed run leaves nothing to clean up."""
    with file_lock(workdir / ".lock") as held:
        yield held


def _stop_run(*_) -> None:
    from harness import train

    train.request_stop()


@contextlib.contextmanager
def _stop_on_signals(pool: ProcessPoolExecutor | None, futures: list):
    """While runs execute here: SIGTERM/SIGINT stop them cleanly (checkpoint, then exit).

    The signal is passed on to every worker (a ``kill`` of the parent alone reaches no
    worker, and orphaned workers would train on), runs not yet started are cancelled, and
    the in-process run is asked to stop. After the last worker has exited, the caller
    raises :class:`KeyboardInterrupt` (``gmgbench run`` exits 130: rerun to continue).
    """
    from harness import train

    got: list[int] = []

    def handler(signum, frame):
        got.append(signum)
        train.request_stop()
        for fut in futures:
            fut.cancel()
        if pool is not None:
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                with contextlib.suppress(ProcessLookupError, OSError):
                    os.kill(proc.pid, signal.SIGTERM)

    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield got
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        train.clear_stop()


def run_local(runs: list[RunSpec], store: ResultsStore, *, workers: int = 1, force: bool = False,
              plugins: tuple[str, ...] = (), progress: bool = True, on_outcome=None, callbacks: tuple = (),
              label: str = "", stream=None, repair: bool = False) -> list[Outcome]:
    """Execute ``runs`` here; with ``workers > 1`` in spawned processes, torch threads split evenly.

    With ``progress``, one display (harness.progress) shows the study and its runs; workers
    send it their runs' progress through a queue. SIGTERM or SIGINT stops every run in
    progress after a checkpoint and raises :class:`KeyboardInterrupt` once all have
    stopped (see :func:`_stop_on_signals`).
    """
    from harness.progress import StudyProgress

    todo = pending(runs, store, force)
    outcomes = [Outcome(r.run_id, r.name, "skipped") for r in runs if r not in todo]
    parallel = workers > 1 and len(todo) > 1
    display = StudyProgress(todo, label=label, enabled=bool(progress), stream=stream, workers=workers if parallel else 1)

    def done(out: Outcome) -> None:
        outcomes.append(out)
        display.finish(out.run_id, out.name, out.status, out.error)
        if on_outcome:
            on_outcome(out)

    try:
        if not parallel:
            with _stop_on_signals(None, []) as got:
                for run in todo:
                    done(execute(run, str(store.root), force, display.handle if progress else False, plugins,
                                 callbacks=callbacks, repair=repair))
                    if got:
                        break
            if got:
                raise KeyboardInterrupt
            return outcomes
        threads = max(1, (os.cpu_count() or 1) // workers)
        # spawn, not fork: torch's and JAX's thread pools do not survive a fork.
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        listener = threading.Thread(target=_forward, args=(events, display), daemon=True)
        listener.start()
        try:
            futures: list = []
            pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(events,))
            with pool, _stop_on_signals(pool, futures) as got:
                futures += [pool.submit(execute, run, str(store.root), force, _to_parent if progress else False,
                                        plugins, threads, callbacks, repair) for run in todo]
                for fut in as_completed(futures):
                    if not fut.cancelled():
                        done(fut.result())
        finally:
            events.put(None)
            listener.join(timeout=5)
        if got:
            raise KeyboardInterrupt
        return outcomes
    finally:
        display.close()


# -- progress from worker processes: events go through a queue to the parent's display -------
_PARENT_EVENTS = None


def _init_worker(events) -> None:
    global _PARENT_EVENTS
    _PARENT_EVENTS = events
    # SIGTERM/SIGINT ask the run in progress to checkpoint and stop (see _stop_on_signals).
    signal.signal(signal.SIGTERM, _stop_run)
    signal.signal(signal.SIGINT, _stop_run)


def _to_parent(event: dict) -> None:
    if _PARENT_EVENTS is not None:
        _PARENT_EVENTS.put(event)


def _forward(events, display) -> None:
    while True:
        event = events.get()
        if event is None:
            return
        display.handle(event)


def is_running_here(workdir: Path) -> bool:
    """Whether a process on this machine holds the run's lock (``gmgbench run`` training it)."""
    lock = workdir / ".lock"
    if not lock.is_file():  # never create one just to look
        return False
    with file_lock(lock) as held:
        return not held


def store_for(spec_name: str, results_root: str | Path | None = None) -> ResultsStore:
    from harness import project

    return ResultsStore(Path(results_root) if results_root else project.results_dir(spec_name))
