"""Where runs execute: here, in N worker processes (``gmgbench run``).

The unit of work is :func:`execute`, one run from spec to stored result; the Slurm
launcher submits the same function, so local and cluster runs share every step.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path

from gmgbench.harness.fileio import file_lock
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import RunSpec

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

    ``progress`` is what :func:`gmgbench.harness.callbacks.run_hooks` takes; ``callbacks`` are
    ``(name, params)`` of run callbacks (TensorBoard, a tracker's plugin)."""
    from gmgbench.harness import train
    from gmgbench.harness.results import StoreError
    from gmgbench.harness.train import Interrupted, run_and_store
    from gmgbench.harness import plugins as plugin_loader

    if train.stop_requested():  # a signal came while this run waited in a worker's queue
        return Outcome(run.run_id, run.name, "stopped", "not started")
    # A fresh process (a worker, a Slurm job) has loaded neither the study's plugin files nor
    # installed packages' methods and metrics: both, in the order load_spec takes them. A broken package
    # was a warning when the spec loaded (a Slurm job's own says it in its log, see
    # TrainJob); a run that needs it fails by name.
    try:
        plugin_loader.load(plugins, warn=False)
    except plugin_loader.PluginError as err:  # a plugin file edited into a broken state since the spec loaded
        return Outcome(run.run_id, run.name, "failed", str(err))
    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
    store = ResultsStore(store_root)
    with run_lock(store, run.run_id) as held:
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
def run_lock(store: ResultsStore, run_id: str):
    """Hold the run's lock (:meth:`ResultsStore.run_lock_path`) while it trains, so two ``gmgbench run`` on one store
    never train the same run twice. The OS drops the lock when its process dies, so a
    crashed or killed run leaves nothing to clean up."""
    with file_lock(store.run_lock_path(run_id)) as held:
        yield held


def _stop_run(*_) -> None:
    from gmgbench.harness import train

    train.request_stop()


# SIGHUP too: a closed terminal or a dropped ssh session stops the study as Ctrl-C does.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def _stop_on_signals(workers: list):
    """While runs execute here: SIGTERM/SIGINT/SIGHUP stop them cleanly (checkpoint, then exit).

    The signal is passed on to every worker process in ``workers`` (a ``kill`` of the
    parent alone reaches no worker), no run is started after it, and the in-process run is
    asked to stop. After the last worker has exited, the caller raises
    :class:`KeyboardInterrupt` (``gmgbench run`` exits 130: rerun to continue).
    """
    from gmgbench.harness import train

    got: list[int] = []

    def handler(signum, frame):
        got.append(signum)
        train.request_stop()
        for w in list(workers):
            with contextlib.suppress(ProcessLookupError, OSError, ValueError):
                os.kill(w.proc.pid, signal.SIGTERM)

    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    old = {s: signal.signal(s, handler) for s in _STOP_SIGNALS}
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

    With ``progress``, one display (gmgbench.harness.progress) shows the study and its runs; workers
    send it their runs' progress over their pipes. SIGTERM, SIGINT or SIGHUP stops every run
    in progress after a checkpoint and raises :class:`KeyboardInterrupt` once all have
    stopped (see :func:`_stop_on_signals`). A worker that dies (``kill -9``, the OOM killer)
    costs only its own run, recorded as failed; the other workers go on (:class:`_Pool`).
    """
    from gmgbench.harness.progress import StudyProgress

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
            with _stop_on_signals([]) as got:
                for run in todo:
                    done(execute(run, str(store.root), force, display.handle if progress else False, plugins,
                                 callbacks=callbacks, repair=repair))
                    if got:
                        break
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            pool = _Pool(min(workers, len(todo)), store, on_event=display.handle)
            with _stop_on_signals(pool.workers) as got:
                pool.run([(run, str(store.root), force, _to_parent if progress else False, plugins, threads,
                           callbacks, repair) for run in todo], done, stop=got)
        if got:
            raise KeyboardInterrupt
        return outcomes
    finally:
        display.close()


# -- worker processes -----------------------------------------------------------------------
# Not concurrent.futures: a ProcessPoolExecutor whose worker dies is "broken" as a whole, its
# other workers are killed (their runs lose the steps since their checkpoints) and the parent
# gets a BrokenProcessPool traceback. Here each worker has a pipe of its own to the parent
# (no shared queue whose lock a killed worker could hold), so a death touches only its run.
@dataclass(eq=False)
class _Worker:
    proc: mp.process.BaseProcess
    conn: Connection
    task: tuple | None = None  # the execute() arguments of the run it trains


class _Pool:
    """``size`` spawned worker processes, each given one run at a time over its own pipe."""

    def __init__(self, size: int, store: ResultsStore, on_event=None):
        # spawn, not fork: torch's and JAX's thread pools do not survive a fork.
        self._ctx = mp.get_context("spawn")
        self.size, self.store, self.on_event = size, store, on_event
        self.workers: list[_Worker] = []  # shared with the signal handler, which signals each

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, os.getpid()), daemon=True)
        proc.start()
        child.close()  # only the worker holds its end: its death reads as EOF here
        worker = _Worker(proc, parent)
        self.workers.append(worker)
        return worker

    def run(self, tasks: list[tuple], done, stop: list) -> None:
        queue = list(reversed(tasks))

        def give(worker: _Worker) -> None:
            worker.task = queue.pop() if queue and not stop else None
            with contextlib.suppress(OSError):  # a worker that died meanwhile: its sentinel says so
                worker.conn.send(worker.task)

        try:
            for _ in range(self.size):
                give(self._start())
            while any(w.task is not None for w in self.workers):
                busy = {w.conn: w for w in self.workers if w.task is not None}
                busy.update({w.proc.sentinel: w for w in self.workers if w.task is not None})
                for ready in wait(list(busy)):
                    worker = busy[ready]
                    if worker.task is None or worker not in self.workers:
                        continue  # handled through its other handle (pipe or sentinel) in this round
                    outcome = self._receive(worker)
                    if outcome is None and worker.proc.is_alive():
                        continue  # a progress event
                    if outcome is None:  # it died during its run
                        outcome = self._died(worker)
                        worker.conn.close()
                        self.workers.remove(worker)
                        worker = self._start() if queue and not stop else None
                    done(outcome)
                    if worker is not None:
                        give(worker)
        finally:
            for w in self.workers:
                with contextlib.suppress(OSError):
                    w.conn.send(None)  # no more runs: the worker returns
            for w in self.workers:
                w.proc.join(timeout=30)
                if w.proc.is_alive():
                    w.proc.kill()
                    w.proc.join()
                w.conn.close()

    def _receive(self, worker: _Worker) -> Outcome | None:
        """Whatever the worker sent (progress events, then maybe its outcome); None if no outcome."""
        while True:
            try:
                if not worker.conn.poll():
                    return None
                kind, payload = worker.conn.recv()
            except (EOFError, OSError):
                return None
            if kind == "outcome":
                worker.task = None
                return payload
            if self.on_event is not None:
                self.on_event(payload)

    def _died(self, worker: _Worker) -> Outcome:
        run, worker.task = worker.task[0], None
        worker.proc.join(timeout=5)
        code = worker.proc.exitcode
        how = (f"killed by {signal.Signals(-code).name}" if code is not None and code < 0
               else f"exit status {code}")
        error = (f"its worker process died ({how}; SIGKILL is what the out-of-memory killer sends); the "
                 "checkpoint is kept: rerun the study to resume it")
        log.debug("%s: %s", run.name, error)
        with contextlib.suppress(OSError):  # the store says so too: `gmgbench status` lists it as failed
            self.store.write_failure(run.run_id, {"run": run.to_dict(), "error": error, "traceback": "",
                                                  "workdir": str(self.store.workdir(run.run_id))})
        return Outcome(run.run_id, run.name, "failed", error)


_PARENT_CONN: Connection | None = None
_SEND_LOCK = threading.Lock()


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel send this worker SIGTERM (checkpoint, then exit) when its parent dies,
    however it dies (``kill -9`` included): an orphaned worker would train on unwatched."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # it died before the line above took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(conn: Connection, parent_pid: int) -> None:
    global _PARENT_CONN
    _PARENT_CONN = conn
    # SIGTERM/SIGINT/SIGHUP ask the run in progress to checkpoint and stop (see
    # _stop_on_signals); a closed terminal sends SIGHUP to the workers too, not only the parent.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _stop_run)
    _die_with_parent(parent_pid)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if task is None:
            return
        try:
            outcome = execute(*task)
        except Exception as err:  # noqa: BLE001 - execute reports its run's errors; anything else is this run's too
            outcome = Outcome(task[0].run_id, task[0].name, "failed", f"{type(err).__name__}: {err}")
        try:
            with _SEND_LOCK:
                conn.send(("outcome", outcome))
        except OSError:  # the parent is gone
            return


def _to_parent(event: dict) -> None:
    if _PARENT_CONN is not None:
        with contextlib.suppress(OSError), _SEND_LOCK:
            _PARENT_CONN.send(("event", event))


def is_running_here(store: ResultsStore, run_id: str) -> bool:
    """Whether a process on this machine holds the run's lock (``gmgbench run`` training it)."""
    lock = store.run_lock_path(run_id)
    if not lock.is_file():  # never create one just to look
        return False
    with file_lock(lock) as held:
        return not held


def store_for(spec_name: str, results_root: str | Path | None = None) -> ResultsStore:
    from gmgbench.harness import project

    return ResultsStore(Path(results_root) if results_root else project.results_dir(spec_name))
