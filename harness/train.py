"""One run, start to finish: train (resuming from a checkpoint), evaluate, store the result.

The loop is fixed here; methods only supply ``(loss, logs)`` terms. Everything that makes a
run's numbers is seeded and checkpointed (model, optimiser, the noise generator, the data
sampler's RandomState, the step and the curve so far), so a run interrupted at any
checkpoint and resumed ends bit for bit where an uninterrupted run ends on CPU.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gmgbench.harness import checkpoints
from gmgbench.harness import data as datasets
from gmgbench.harness.callbacks import Hooks, run_hooks
from gmgbench.harness.evaluation import check_finite, evaluate_model
from gmgbench.harness.health import HealthMonitor
from gmgbench.harness.results import ResultsStore, RunFiles, StoreError, atomic_write_text, provenance
from gmgbench.harness.spec import RunSpec
from gmgbench.harness.stale import code_changes, current_code
from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import call_checked, update_checked

__all__ = ["train_run", "run_and_store", "Interrupted"]

log = logging.getLogger(__name__)
CURVE_POINTS = 200  # the result keeps a downsampled curve; curve.csv in the workdir keeps all


class Interrupted(RuntimeError):
    """Raised when a run stops early on request (``stop_after``, a signal), after checkpointing."""


class StaleCheckpoint(StoreError):
    """A checkpoint was written by other method code than this process would run."""


_STOP = threading.Event()


def request_stop() -> None:
    """Ask the run training in this process to checkpoint and raise :class:`Interrupted`
    after its current step (safe to call from a signal handler)."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


def clear_stop() -> None:
    _STOP.clear()


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is visible")
    return torch.device(name)


def build_model(run: RunSpec, dataset: datasets.GroundTruthData) -> VAE:
    return VAE(num_channels=dataset.observation_shape[2], latent_dim=run.train.latent_dim)


def _build_terms(run: RunSpec):
    """The run's objective and regularisers, from the Configs its spec built (once) at load."""
    obj_cfg, reg_cfgs = run.method_configs()
    objective = registry.get(run.objective, "objective")(obj_cfg)
    regs = [registry.get(name, "regulariser")(cfg) for (name, _), cfg in zip(run.regularisers, reg_cfgs)]
    return objective, regs


def method_config(run: RunSpec) -> dict[str, Any]:
    """Every method parameter of ``run`` in effect now, defaults included (stored in results)."""
    obj_cfg, reg_cfgs = run.method_configs()
    return {"objective": dataclasses.asdict(obj_cfg),
            "regularisers": [{"name": name, "params": dataclasses.asdict(cfg)}
                             for (name, _), cfg in zip(run.regularisers, reg_cfgs)]}


def changed_defaults(run: RunSpec, result: dict[str, Any]) -> list[str]:
    """``"gmg.use_mean: True (stored) -> False (now)"`` for each parameter whose value differs
    between a stored result and what ``run`` resolves to now. The run id hashes only what the
    spec sets, so this is how a changed default shows; results without a record give ``[]``."""
    stored = result.get("method_config")
    if not stored:
        return []
    now = method_config(run)

    def flat(cfg: dict[str, Any]) -> dict[str, Any]:
        out = {f"{run.objective}.{k}": v for k, v in cfg["objective"].items()}
        for reg in cfg["regularisers"]:
            out.update({f"{reg['name']}.{k}": v for k, v in reg["params"].items()})
        return out

    before, after = flat(stored), flat(now)
    pairs = {k: (before.get(k, "(absent)"), after.get(k, "(absent)")) for k in sorted(set(before) | set(after))}
    return [f"{k}: {old!r} (stored) -> {new!r} (now)" for k, (old, new) in pairs.items() if old != new]


def train_run(run: RunSpec, workdir: Path, *, progress: bool | str | Callable = True,
              stop_after: int | None = None, on_step: Callable[[int], None] | None = None,
              hooks: Hooks | None = None) -> dict[str, Any]:
    """Train ``run`` in ``workdir``, resuming from its checkpoint if present.

    Returns the training summary; the model is saved to the folder's ``model.pt``
    (:class:`~gmgbench.harness.results.RunFiles` names the files). ``stop_after`` stops
    (after a checkpoint) once that many steps ran in this call, which is how tests and
    preemption drills interrupt a run. ``hooks`` are the run's callbacks
    (gmgbench.harness.callbacks, progress included); without them, ``progress`` makes its own
    display (see :func:`gmgbench.harness.callbacks.run_hooks`), closed when training ends.
    """
    if hooks is not None:
        return _train(run, RunFiles(workdir), hooks, stop_after, on_step)
    with contextlib.closing(run_hooks(run, workdir, progress)) as own:
        return _train(run, RunFiles(workdir), own, stop_after, on_step)


def _train(run: RunSpec, files: RunFiles, hooks: Hooks, stop_after: int | None,
           on_step: Callable[[int], None] | None) -> dict[str, Any]:
    """The phases of training: build, resume, loop, then keep the model and the curve."""
    t = _build(run, files)
    _resume(t)
    hooks.on_run_start(t.step)
    _loop(t, hooks, stop_after, on_step)
    return _finish(t)


@dataclasses.dataclass
class _Training:
    """A run in training: what it trains, and everything its numbers depend on (all of it
    checkpointed by :func:`_checkpoint`, all of it seeded by :func:`_build`)."""
    run: RunSpec
    files: RunFiles
    device: torch.device
    dataset: datasets.GroundTruthData
    model: VAE
    objective: Any
    regs: list
    opt: torch.optim.Optimizer
    noise: torch.Generator
    sampler: np.random.RandomState
    health: HealthMonitor
    code: dict[str, Any]  # the method code this process runs (stale.current_code)
    step: int = 0
    curve: list[dict[str, float]] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0
    sums: dict[str, float] = dataclasses.field(default_factory=dict)  # the logging window in progress

    @property
    def components(self) -> list:
        return [self.objective, *self.regs]


def _build(run: RunSpec, files: RunFiles) -> _Training:
    """Model, methods, optimiser and random generators, seeded from the run's seed. The order
    is part of the result: each draw from torch's global RNG initialises the next module."""
    cfg = run.train
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = _device(cfg.device)
    dataset = datasets.load(run.dataset, run.dataset_root)
    torch.manual_seed(run.seed)
    model = build_model(run, dataset).to(device)
    if cfg.memory_format == "channels_last":  # before Adam: its moments take the parameters' layout
        model = model.to(memory_format=torch.channels_last)
    objective, regs = _build_terms(run)
    for c in (objective, *regs):  # methods with modules of their own (FactorVAE's discriminator) build them
        c.setup(cfg.latent_dim, device)
    return _Training(
        run, files, device, dataset, model, objective, regs,
        opt=torch.optim.Adam(model.parameters(), lr=cfg.lr),
        noise=torch.Generator(device=device).manual_seed(run.seed),
        sampler=np.random.RandomState(run.seed),
        health=HealthMonitor([r.name for r in regs], [r.cfg.weight for r in regs], cfg.health_every),
        code=current_code(run))


def _resume(t: _Training) -> None:
    """Continue from the folder's checkpoint, if any: every state :func:`_checkpoint` keeps."""
    for tmp in t.files.folder.glob(".*.tmp*"):  # left by a process killed mid-write (we hold the run now)
        tmp.unlink(missing_ok=True)
    path = t.files.checkpoint
    if not path.is_file():
        return
    ckpt = checkpoints.load(path, map_location=t.device, what="checkpoint")
    changed = code_changes(ckpt.get("method_code"), now=t.code)  # by content, not by folder
    if changed:
        raise StaleCheckpoint(f"{path}: written by other method code ({'; '.join(changed)}); resuming would "
                              "mix two versions of the method: `gmgbench run STUDY --force` starts the run over "
                              "(the old files stay until the new run completes)")
    t.model.load_state_dict(ckpt["model"])
    t.opt.load_state_dict(ckpt["optimizer"])
    t.noise.set_state(ckpt["noise"].cpu() if t.device.type == "cpu" else ckpt["noise"])
    checkpoints.set_sampler_state(t.sampler, ckpt["sampler"])
    _load_method_states(t.run, t.components, ckpt.get("methods"))
    t.step, t.curve, t.elapsed, t.sums = ckpt["step"], ckpt["curve"], ckpt["elapsed"], ckpt.get("window", {})
    t.health.load_state(ckpt.get("health"))
    torch.set_rng_state(ckpt["torch_rng"].cpu())
    if ckpt.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
    log.info("%s: resumed at step %d", t.run.name, t.step)


def _checkpoint(t: _Training) -> None:
    # Tensors and plain containers only: loads with weights_only=True (harness/checkpoints.py).
    checkpoints.save({
        "model": t.model.state_dict(), "optimizer": t.opt.state_dict(), "noise": t.noise.get_state(),
        "sampler": checkpoints.sampler_state(t.sampler), "step": t.step, "curve": t.curve, "elapsed": t.elapsed,
        "method_code": t.code,  # resuming under other method code is refused
        "window": t.sums,  # the logging window in progress, so curve points survive a resume
        "health": t.health.state(),
        "methods": [c.state_dict() for c in t.components],  # what methods train themselves
        # Methods may draw from torch's global RNG (HFS's latent pairs, Hutchinson
        # probes): it is part of the run's state too.
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if t.device.type == "cuda" else None,
    }, t.files.checkpoint)


def _loop(t: _Training, hooks: Hooks, stop_after: int | None, on_step: Callable[[int], None] | None) -> None:
    """Step until the run's steps are done, logging and checkpointing on the way; a stop
    request (``stop_after``, a signal) checkpoints, then raises :class:`Interrupted`."""
    cfg = t.run.train
    params = list(t.model.parameters())
    t.model.train()
    ran = 0
    t0 = time.perf_counter()
    while t.step < cfg.steps:
        logs = _step(t, params)
        ran += 1
        for k, v in logs.items():
            t.sums[k] = t.sums.get(k, 0.0) + v
        if t.step % cfg.log_every == 0 or t.step == cfg.steps:
            n = cfg.log_every if t.step % cfg.log_every == 0 else t.step % cfg.log_every
            t.curve.append({"step": t.step, **{k: v / n for k, v in sorted(t.sums.items())}})
            t.sums = {}
            hooks.on_log(t.step, t.curve[-1])
        hooks.on_step(t.step, logs)
        if on_step is not None:
            on_step(t.step)
        stop = (stop_after is not None and ran >= stop_after) or _STOP.is_set()
        if t.step % cfg.checkpoint_every == 0 or t.step == cfg.steps or stop:
            t.elapsed += time.perf_counter() - t0
            t0 = time.perf_counter()
            _checkpoint(t)
            if stop and t.step < cfg.steps:
                raise Interrupted(f"{t.run.name}: stopped after {ran} steps at step {t.step} (checkpointed)")
    t.elapsed += time.perf_counter() - t0


def _step(t: _Training, params: list[torch.Tensor]) -> dict[str, float]:
    """One optimiser step on a fresh batch; returns its logs (the loss and each term's)."""
    cfg = t.run.train
    factors = t.dataset.sample_factors(cfg.batch_size, t.sampler)
    x = t.dataset.training_batch(factors, t.sampler, t.device)
    if cfg.memory_format == "channels_last":  # the default path keeps the batch exactly as it always was
        x = x.contiguous(memory_format=torch.channels_last)
    out = t.model(x, generator=t.noise, dataset_size=t.dataset.dataset_size)
    out.step = t.step
    loss, logs = call_checked(t.objective, out)
    terms, values = [], []
    for reg in t.regs:
        term, rlogs = call_checked(reg, out)
        loss = loss + reg.cfg.weight * term
        logs.update({f"{reg.name}.{k}": v for k, v in rlogs.items()})
        terms.append(term)
        values.append(float(term.detach()))
        logs[reg.name] = values[-1]
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{t.run.name}: loss is {loss.item()} at step {t.step}; lower the learning rate or the weights")
    # Health: each term's own gradient on a retained graph, before (and without touching)
    # the ordinary backward, so the step is the one an unmeasured run takes.
    measured = t.health.term_grads(terms, params) if t.health.due(t.step) else None
    t.opt.zero_grad(set_to_none=True)
    loss.backward()
    if measured is not None:
        t.health.record_grads(t.step, measured, params)
        del measured
    t.opt.step()
    for c in t.components:
        logs.update(update_checked(c, out))
    t.step += 1
    logs["loss"] = float(loss.detach())
    t.health.record_values(values, logs["loss"])
    return logs


def _finish(t: _Training) -> dict[str, Any]:
    """Keep the trained model and the whole curve in the run's folder; the training summary."""
    checkpoints.save({"model": t.model.state_dict(), "run": t.run.to_dict()}, t.files.model)
    _write_curve_csv(t.curve, t.files.curve)
    return {
        "health": t.health.summary(t.curve, [r.name for r in t.regs]),
        "steps": t.step,
        "final": t.curve[-1] if t.curve else {},
        "curve": _downsample(t.curve, CURVE_POINTS),
        "train_seconds": t.elapsed,
        "seconds_per_step": t.elapsed / max(t.step, 1),
        "device": str(t.device) if t.device.type == "cpu" else torch.cuda.get_device_name(t.device),
    }


def _load_method_states(run: RunSpec, terms: list, states: list | None) -> None:
    """Give each method back its own state; a checkpoint without it is from a method that kept none."""
    states = states if states is not None else [{} for _ in terms]
    if len(states) != len(terms):
        raise ValueError(f"{run.name}: the checkpoint holds the state of {len(states)} methods, the run has {len(terms)}")
    for term, state in zip(terms, states):
        term.load_state_dict(state)


def _downsample(curve: list[dict], n: int) -> list[dict]:
    if len(curve) <= n:
        return curve
    idx = np.unique(np.linspace(0, len(curve) - 1, n).round().astype(int))
    return [curve[i] for i in idx]


def _write_curve_csv(curve: list[dict], path: Path) -> None:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(curve).to_csv(buf, index=False)
    atomic_write_text(path, buf.getvalue())


def run_and_store(run: RunSpec, store: ResultsStore, *, force: bool = False, progress: bool | str | Callable = True,
                  stop_after: int | None = None, callbacks: tuple = (), repair: bool = False) -> dict[str, Any] | None:
    """Train, evaluate and write the result of ``run``; a failure writes a failure record.

    Returns the result, or ``None`` when the result already existed and ``force`` is off.
    ``callbacks`` are ``(name, params)`` of run callbacks (gmgbench.harness.callbacks, e.g. TensorBoard).
    ``force`` retrains in ``work/<id>.next/`` and swaps model and result in only once both
    are complete, so an interrupted ``--force`` leaves the old run as it was. A corrupt
    result raises :class:`StoreError` naming it, unless ``repair`` (then the file is moved
    to ``quarantine/`` and the run retrained; so is a checkpoint that does not load).
    """
    files = _prepare(run, store, force, repair)
    if files is None:
        return None
    with contextlib.closing(run_hooks(run, store.workdir(run.run_id), progress, callbacks)) as hooks:
        files.folder.mkdir(parents=True, exist_ok=True)
        started = time.time()
        try:
            training = train_run(run, files.folder, stop_after=stop_after, hooks=hooks)
            scores, eval_seconds = _evaluate(run, files, hooks)
        except Interrupted:
            raise
        except Exception as err:  # not BaseException: a requeue's SystemExit or Ctrl-C is no failure
            import traceback

            store.write_failure(run.run_id, {
                "run": run.to_dict(), "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(), "workdir": str(files.folder),
            })
            raise
        check_finite(run.name, scores)
        result = _result(run, training, scores, started, eval_seconds)
        if force:
            store.commit_next(run.run_id, result)
        else:
            store.write_result(run.run_id, result)
        hooks.on_run_end(result)
        return result


def _prepare(run: RunSpec, store: ResultsStore, force: bool, repair: bool) -> RunFiles | None:
    """The folder the run trains in, after what ``repair`` moves aside; ``None`` when its
    result is stored and ``force`` is off (nothing to do)."""
    rid = run.run_id
    store.finish_swap(rid, locked=True)  # the caller holds the run's lock (executors.execute)
    state, why = store.result_state(rid)
    if state == "corrupt":
        if not repair:
            raise StoreError(why)
        log.warning("%s: moved to %s", why.split(": ")[0], store.quarantine(store.result_path(rid)))
    if repair and store.failure_state(rid)[0] == "corrupt":
        store.quarantine(store.failure_path(rid))
    if state == "done" and not force:
        return None
    if force:
        files = store.run_files(rid, next=True)
        if force != "resume":  # "resume": a requeued Slurm job of `launch --force` goes on with its own retraining
            shutil.rmtree(files.folder, ignore_errors=True)  # an earlier, interrupted --force: start over
        return files
    files = store.run_files(rid)
    ckpt = files.checkpoint
    if repair and ckpt.is_file():  # a checkpoint this code cannot resume goes aside, the run starts over
        try:
            changed = code_changes(checkpoints.load(ckpt).get("method_code"), now=current_code(run))
            if changed:
                raise StoreError(f"{ckpt}: written by other method code ({'; '.join(changed)})")
        except StoreError as err:
            log.warning("%s; moved to %s", err, store.quarantine(ckpt))
    return files


def _evaluate(run: RunSpec, files: RunFiles, hooks: Hooks) -> tuple[dict[str, dict[str, float]], float]:
    """The run's metrics, of the model as training saved it, and the seconds they took."""
    t0 = time.perf_counter()
    device = _device(run.train.device)
    model, _ = checkpoints.load_model(files.model, device)
    scores = evaluate_model(model, run, device=device, on_metric=hooks.on_eval)
    return scores, time.perf_counter() - t0


def _result(run: RunSpec, training: dict[str, Any], scores: dict[str, dict[str, float]], started: float,
            eval_seconds: float) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "name": run.name,
        "config": run.to_dict(),
        # Every parameter in effect, defaults included: the run id hashes only what the spec
        # sets, so this is what says how a result was computed if a default changes later.
        "method_config": method_config(run),
        # The method code this result ran (harness/stale.py: compared by `run`, `status` and the
        # leaderboard); method_source is the older, single-file record, kept for comparison.
        "method_code": current_code(run),
        "method_source": {n: registry.source_hash(n, k) for n, k in
                          [(run.objective, "objective"), *((r, "regulariser") for r, _ in run.regularisers)]},
        "metrics": scores,
        # Regulariser health (harness/health.py): does each term act on training?
        "health": training.pop("health", None),
        "training": training,
        "provenance": {**provenance(), "seed": run.seed, "started": started, "finished": time.time(),
                       "wall_seconds": time.time() - started, "eval_seconds": eval_seconds,
                       "device": training["device"]},
        "status": "done",
    }
