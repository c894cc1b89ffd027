"""Progress of a study and of its runs: bars with ETA on a terminal, plain lines in a log.

A run reports *events* (plain dicts, so they cross process boundaries through a queue):
``start`` (its total steps, the step it resumes at), ``step`` (at most every
:data:`STEP_EVENT_SECONDS`), ``eval`` (before each metric, ``k of n``) and ``end``. The
parent process turns them into one display, :class:`StudyProgress`, whether the runs train
here or in worker processes (``gmgbench run --workers N``):

- on a terminal (tqdm): one bar for the study, ``k/N runs``, counting steps so that its ETA
  is the remaining steps at the measured rate; one bar per run in progress, with its own
  ETA and, while it evaluates, the metric it computes;
- otherwise (a CI log, a Slurm job's output, a pipe): a line per run at every 10 % of its
  steps and at each metric, and a line per finished run with the study's ETA. Nothing is
  redrawn, so logs stay readable.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Iterable

__all__ = ["StudyProgress", "RunReporter", "STEP_EVENT_SECONDS", "format_seconds"]

STEP_EVENT_SECONDS = 0.5  # a worker sends at most this often (and its last step)
LINE_FRACTION = 0.1  # non-terminal output: a line per run at every tenth of its steps


def format_seconds(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class RunReporter:
    """The training-loop side: a run callback that sends throttled events to ``send``."""

    def __init__(self, run_id: str, name: str, total: int, send: Callable[[dict[str, Any]], None]):
        self.run_id, self.name, self.total, self.send = run_id, name, total, send
        self._last = 0.0
        self._loss: float | None = None

    def _event(self, kind: str, **fields) -> None:
        self.send({"kind": kind, "run_id": self.run_id, "name": self.name, "total": self.total,
                   "time": time.time(), **fields})

    def on_run_start(self, step: int) -> None:
        self._event("start", step=step)

    def on_step(self, step: int, logs: dict[str, float]) -> None:
        now = time.monotonic()
        if now - self._last >= STEP_EVENT_SECONDS or step >= self.total:
            self._last = now
            self._event("step", step=step, loss=self._loss)

    def on_log(self, step: int, point: dict[str, float]) -> None:
        self._loss = point.get("loss")

    def on_eval(self, metric: str, index: int, count: int) -> None:
        self._event("eval", metric=metric, index=index, count=count)


class StudyProgress:
    """The display of a study's runs (see the module docstring); thread-safe.

    ``handle(event)`` takes a run's events; ``finish(run_id, name, status)`` counts a run
    as over (done, failed, busy). ``tty`` defaults to whether ``stream`` is a terminal.
    """

    def __init__(self, runs: Iterable, *, label: str = "", stream=None, tty: bool | None = None,
                 enabled: bool = True, workers: int = 1):
        runs = list(runs)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.enabled = enabled
        self.label = label
        self.count = len(runs)
        self.total_steps = sum(int(r.train.steps) for r in runs)
        self.finished = 0
        self._steps: dict[str, int] = {}  # run id -> steps done (by any process)
        self._start_steps = 0  # steps already done when the study started here (resumed runs)
        self._runs: dict[str, dict[str, Any]] = {}
        self._over: set[str] = set()  # finished runs: their late (queued) events are dropped
        self._lock = threading.Lock()
        self._t0 = time.monotonic()
        self._bar = None
        self._run_bars: dict[str, Any] = {}
        self._free_positions = list(range(1, max(workers, 1) + 1))
        if self.enabled and self.tty and self.count:
            from tqdm.auto import tqdm

            self._tqdm = tqdm
            self._bar = tqdm(total=self.total_steps, desc=self._desc(), unit="step", file=self.stream,
                             position=0, dynamic_ncols=True, mininterval=0.5, smoothing=0.1)

    # -- helpers ----------------------------------------------------------------------
    def _desc(self) -> str:
        return f"{self.label + ': ' if self.label else ''}{self.finished}/{self.count} runs"

    def _done_steps(self) -> int:
        return sum(self._steps.values())

    def eta(self) -> float | None:
        """Seconds left for the study's training steps at the rate measured since it started."""
        ran = self._done_steps() - self._start_steps
        elapsed = time.monotonic() - self._t0
        if ran <= 0 or elapsed <= 0:
            return None
        return (self.total_steps - self._done_steps()) * elapsed / ran

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    # -- events -----------------------------------------------------------------------
    def handle(self, event: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self._lock:
            if event.get("run_id") in self._over:
                return
            getattr(self, f"_on_{event['kind']}", lambda e: None)(event)

    def _on_start(self, e: dict[str, Any]) -> None:
        rid = e["run_id"]
        first = rid not in self._steps
        self._steps[rid] = e["step"]
        if first:
            self._start_steps += e["step"]
        st = self._runs.setdefault(rid, {"name": e["name"], "total": e["total"]})
        st.update(t0=time.monotonic(), step0=e["step"], mark=e["step"])
        if self._bar is not None:
            if first:
                self._bar.update(e["step"])
            pos = self._free_positions.pop(0) if self._free_positions else None
            if pos is not None:
                st["position"] = pos
                self._run_bars[rid] = self._tqdm(total=e["total"], initial=e["step"], desc=_short(e["name"]),
                                                 unit="step", file=self.stream, position=pos, leave=False,
                                                 dynamic_ncols=True, mininterval=0.5)
        elif e["step"]:
            self._line(f"  {e['name']}: resuming at step {e['step']}/{e['total']}")

    def _on_step(self, e: dict[str, Any]) -> None:
        rid = e["run_id"]
        before = self._steps.get(rid, 0)
        self._steps[rid] = e["step"]
        st = self._runs.setdefault(rid, {"name": e["name"], "total": e["total"], "t0": time.monotonic(),
                                         "step0": before, "mark": before})
        if self._bar is not None:
            self._bar.update(max(e["step"] - before, 0))
            bar = self._run_bars.get(rid)
            if bar is not None:
                bar.update(max(e["step"] - bar.n, 0))
                if e.get("loss") is not None:
                    bar.set_postfix(loss=f"{e['loss']:.1f}", refresh=False)
            return
        every = max(int(e["total"] * LINE_FRACTION), 1)
        if e["step"] // every > st["mark"] // every or e["step"] >= e["total"] > st["mark"]:
            st["mark"] = e["step"]
            elapsed = time.monotonic() - st["t0"]
            rate = (e["step"] - st["step0"]) / elapsed if elapsed > 0 else 0.0
            eta = (e["total"] - e["step"]) / rate if rate > 0 else None
            loss = f", loss {e['loss']:.1f}" if e.get("loss") is not None else ""
            self._line(f"  {e['name']}: step {e['step']}/{e['total']}{loss}, {rate:.1f} steps/s, "
                       f"ETA {format_seconds(eta)}")

    def _on_eval(self, e: dict[str, Any]) -> None:
        text = f"evaluating {e['metric']} ({e['index'] + 1} of {e['count']})"
        bar = self._run_bars.get(e["run_id"])
        if bar is not None:
            bar.set_description_str(f"{_short(e['name'])} {text}", refresh=True)
        elif self._bar is None:
            self._line(f"  {e['name']}: {text}")

    def finish(self, run_id: str, name: str, status: str, error: str = "") -> None:
        """Count a run as over (``done``, ``failed``, ``busy``; ``skipped`` runs are not counted)."""
        if not self.enabled:
            return
        with self._lock:
            self._over.add(run_id)
            self.finished += 1
            st = self._runs.pop(run_id, None)
            total = st["total"] if st else 0
            if status == "done" and total:  # count the rest of a run's steps (events are throttled)
                before = self._steps.get(run_id, 0)
                self._steps[run_id] = total
                if self._bar is not None:
                    self._bar.update(max(total - before, 0))
            bar = self._run_bars.pop(run_id, None)
            if bar is not None:
                bar.close()
                self._free_positions.append(st["position"])
                self._free_positions.sort()
            if self._bar is not None:
                self._bar.set_description_str(self._desc(), refresh=True)
                suffix = f"  ({error})" if error else ""
                self._bar.write(f"  {status:<7} {name}{suffix}", file=self.stream)
            else:
                left = self.count - self.finished
                eta = f", study ETA {format_seconds(self.eta())}" if left else ""
                suffix = f"  ({error})" if error else ""
                self._line(f"[{self.finished}/{self.count} runs] {status:<7} {name}{suffix}{eta}")

    def close(self) -> None:
        with self._lock:
            for bar in self._run_bars.values():
                bar.close()
            self._run_bars.clear()
            if self._bar is not None:
                self._bar.close()
                self._bar = None


def _short(name: str, width: int = 48) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"
