"""Run callbacks: experiment trackers (TensorBoard, W&B, ...) see a run without core edits.

A callback is any object with some of these methods (each optional)::

    on_run_start(step)              before the first step (step > 0 when resuming)
    on_step(step, logs)             after every optimiser step; logs: the step's floats
    on_log(step, point)             every train.log_every steps: the curve point (window means)
    on_eval(metric, index, count)   before each metric of the evaluation
    on_run_end(result)              after the result is stored (the stored dict)
    close()                         last, always (after a failure too)

One is made per run by a factory, ``factory(run, workdir, **params)``. Factories are named:
``tensorboard`` is built in; an installed package adds its own under the entry-point group
``gmgbench.callbacks``; ``package.module:attr`` names any importable one. A study asks for
them with ``callbacks: [tensorboard, {name: mypkg.tracking:Wandb, params: {project: x}}]``
and ``gmgbench run/demo/launch --tensorboard`` (or ``--callback NAME``) adds them from the
command line. Callbacks never enter a run id: logging does not change a result.

A callback that raises in ``on_run_start`` (say, a missing package) fails the run before it
trains; a later error is logged once and that callback is switched off, so a tracker's
hiccup never costs a trained run.
"""
from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from gmgbench.harness.errors import UserError

__all__ = ["Callback", "CallbackError", "Hooks", "ENTRY_POINT_GROUP", "BUILTIN", "resolve", "normalise", "check_section",
           "build", "run_hooks", "TensorBoard"]

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "gmgbench.callbacks"
BUILTIN = {"tensorboard": "gmgbench.harness.callbacks:TensorBoard"}
_HOOKS = ("on_run_start", "on_step", "on_log", "on_eval", "on_run_end")


class CallbackError(UserError):
    """A callback name that resolves to nothing callable; the message names it."""


@runtime_checkable
class Callback(Protocol):
    """The protocol, for type checkers and documentation; every method is optional."""

    def on_run_start(self, step: int) -> None: ...
    def on_step(self, step: int, logs: dict[str, float]) -> None: ...
    def on_log(self, step: int, point: dict[str, float]) -> None: ...
    def on_eval(self, metric: str, index: int, count: int) -> None: ...
    def on_run_end(self, result: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def normalise(entries: Any, where: str = "callbacks") -> tuple[tuple[str, dict[str, Any]], ...]:
    """``[name | {name, params}]`` -> ``((name, params), ...)``; a shape error names ``where``."""
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise CallbackError(f"{where}: a list of callback names or {{name, params}} mappings, got {entries!r}")
    out = []
    for i, e in enumerate(entries):
        if isinstance(e, str):
            out.append((e, {}))
        elif isinstance(e, dict) and isinstance(e.get("name"), str) and set(e) <= {"name", "params"} \
                and isinstance(e.get("params") or {}, dict):
            out.append((e["name"], dict(e.get("params") or {})))
        else:
            raise CallbackError(f"{where}[{i}]: a callback is a name or {{name: NAME, params: {{...}}}}, got {e!r}")
    return tuple(out)


def resolve(name: str) -> Callable[..., Any]:
    """The factory called ``name``: built in, an entry point, or ``module:attr``."""
    target = BUILTIN.get(name)
    if target is None:
        from importlib import metadata

        eps = [ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if eps:
            return eps[0].load()
        if ":" not in name:
            known = sorted({*BUILTIN, *(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))})
            raise CallbackError(f"unknown callback {name!r}; known: {', '.join(known)} (or give module:attr)")
        target = name
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise CallbackError(f"callback {name!r}: cannot import {target}: {err}") from None
    if not callable(obj):
        raise CallbackError(f"callback {name!r}: {target} is not callable")
    return obj


def check_section(where: str, raw: Any, spec, full: bool) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The study spec's ``callbacks:`` as it loads (a :class:`gmgbench.harness.spec.SectionCheck`):
    their shape, and with ``full`` that each name resolves (which imports the callback)."""
    callbacks = normalise(raw, f"{where}: callbacks")
    for i, (name, _) in enumerate(callbacks if full else ()):
        try:
            resolve(name)
        except CallbackError as err:
            raise CallbackError(f"{where}: callbacks[{i}]: {err}") from None
        except (ValueError, TypeError) as err:  # importlib on ':attr' or '..x:y'
            raise CallbackError(f"{where}: callbacks[{i}]: {name!r}: not module:attr with an importable module "
                                f"({err})") from None
    return callbacks


def build(specs: Iterable[tuple[str, dict[str, Any]]], run, workdir: Path) -> list[Any]:
    return [resolve(name)(run, Path(workdir), **params) for name, params in specs]


def run_hooks(run, workdir: Path, progress: Any = True, specs: Iterable[tuple[str, dict[str, Any]]] = ()) -> "Hooks":
    """A run's hooks: its progress display and the callbacks ``specs`` name.

    ``progress``: a callable takes the run's progress events (a study's display, or a queue
    to the parent process); ``True`` makes a display of this one run (bars on a terminal,
    lines otherwise), ``"lines"`` forces lines, ``False`` shows nothing.
    """
    from gmgbench.harness.progress import RunReporter, StudyProgress

    callbacks: list[Any] = []
    if callable(progress):
        callbacks.append(RunReporter(run.run_id, run.name, run.train.steps, progress))
    elif progress:
        display = StudyProgress([run], tty=False if progress == "lines" else None)
        callbacks += [RunReporter(run.run_id, run.name, run.train.steps, display.handle), display]
    return Hooks([*callbacks, *build(specs, run, workdir)])


class Hooks:
    """Calls every callback's hook in order; see the module docstring for errors."""

    def __init__(self, callbacks: Iterable[Any] = ()):
        self.callbacks = [c for c in callbacks if c is not None]
        self._started = False

    def _call(self, hook: str, *args) -> None:
        for cb in list(self.callbacks):
            fn = getattr(cb, hook, None)
            if fn is None:
                continue
            if hook == "on_run_start":
                fn(*args)
                continue
            try:
                fn(*args)
            except Exception as err:  # noqa: BLE001 - a tracker must not cost the run
                log.warning("callback %s failed in %s (%s: %s); it is switched off for this run",
                            type(cb).__name__, hook, type(err).__name__, err)
                self.callbacks.remove(cb)
                _close(cb)

    def on_run_start(self, step: int) -> None:
        self._started = True
        self._call("on_run_start", step)

    def on_step(self, step: int, logs: dict[str, float]) -> None:
        self._call("on_step", step, logs)

    def on_log(self, step: int, point: dict[str, float]) -> None:
        self._call("on_log", step, point)

    def on_eval(self, metric: str, index: int, count: int) -> None:
        self._call("on_eval", metric, index, count)

    def on_run_end(self, result: dict[str, Any]) -> None:
        self._call("on_run_end", result)

    def close(self) -> None:
        for cb in self.callbacks:
            _close(cb)
        self.callbacks = []


def _close(cb: Any) -> None:
    fn = getattr(cb, "close", None)
    if fn is not None:
        try:
            fn()
        except Exception as err:  # noqa: BLE001
            log.warning("callback %s failed to close: %s", type(cb).__name__, err)


# ---------------------------------------------------------------------------------------
class TensorBoard:
    """Every curve value as a scalar, the metrics, and the regulariser-health record (its
    gradient-share series as scalars, its summary as scalars and a figure), in
    ``<workdir>/tensorboard/`` (``tensorboard --logdir results/<study>/work``).

    Needs the ``tensorboard`` package: ``pip install 'gmgbench[tensorboard]'``.
    """

    def __init__(self, run, workdir: Path, every: str = "log", flush_secs: int = 30):
        if every not in ("log", "step"):
            raise ValueError(f"tensorboard: every is 'log' (curve points) or 'step', got {every!r}")
        self.run, self.every, self.flush_secs = run, every, flush_secs
        self.logdir = Path(workdir) / "tensorboard"
        self.writer = None

    def on_run_start(self, step: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ImportError(f"the tensorboard callback needs the tensorboard package ({err}); "
                              "install it with: pip install 'gmgbench[tensorboard]'") from None
        # purge_step drops what a killed run logged after its last checkpoint, so a resumed
        # run's curve has no duplicate steps.
        self.writer = SummaryWriter(str(self.logdir), purge_step=step or None, flush_secs=self.flush_secs)
        if step == 0:
            self.writer.add_text("run", f"`{self.run.name}` (run id {self.run.run_id})", 0)

    def on_step(self, step: int, logs: dict[str, float]) -> None:
        if self.every == "step":
            for key, value in logs.items():
                self.writer.add_scalar(f"train_step/{key}", value, step)

    def on_log(self, step: int, point: dict[str, float]) -> None:
        for key, value in point.items():
            if key != "step":
                self.writer.add_scalar(f"train/{key}", value, step)

    def on_run_end(self, result: dict[str, Any]) -> None:
        step = int((result.get("training") or {}).get("steps", 0))
        for metric, values in (result.get("metrics") or {}).items():
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self.writer.add_scalar(f"metrics/{metric}.{key}", value, step)
        terms = ((result.get("health") or {}).get("terms") or {})
        for term, rec in terms.items():
            for s, share in rec.get("series") or []:
                self.writer.add_scalar(f"health/{term}/grad_share", share, s)
            for key in ("loss_ratio", "zero_windows", "cos_mean", "gw_failed_rate", "gw_iters"):
                if isinstance(rec.get(key), (int, float)):
                    self.writer.add_scalar(f"health/{term}/{key}", rec[key], step)
            if isinstance(rec.get("inert"), bool):
                self.writer.add_scalar(f"health/{term}/inert", float(rec["inert"]), step)
        figure = _health_figure(terms, self.run.name)
        if figure is not None:
            self.writer.add_figure("health/grad_share", figure, step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _health_figure(terms: dict[str, Any], title: str):
    """Each term's gradient share over training (None without measurements)."""
    series = {t: rec["series"] for t, rec in terms.items() if rec.get("series")}
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for term, pts in series.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=term)
    ax.set(xlabel="step", ylabel="gradient share", ylim=(0, 1), title=title[:60])
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
