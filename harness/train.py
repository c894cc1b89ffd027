"""One run, start to finish: train (resuming from a checkpoint), evaluate, store the result.

The loop is fixed here; methods only supply ``(loss, logs)`` terms. Everything that makes a
run's numbers is seeded and checkpointed (model, optimiser, the noise generator, the data
sampler's RandomState, the step and the curve so far), so a run interrupted at any
checkpoint and resumed ends bit for bit where an uninterrupted run ends on CPU.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import math
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
from gmgbench.harness.health import HealthMonitor
from gmgbench.harness.results import ResultsStore, StoreError, atomic_write_text, provenance
from gmgbench.harness.spec import RunSpec
from gmgbench.harness.stale import code_changes, current_code
from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import call_checked, update_checked

__all__ = ["train_run", "run_and_store", "load_model", "representation_function", "Interrupted"]

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
    """Train ``run`` in ``workdir``, resuming from ``workdir/checkpoint.pt`` if present.

    Returns the training summary; the model is saved to ``workdir/model.pt``.
    ``stop_after`` stops (after a checkpoint) once that many steps ran in this call, which
    is how tests and preemption drills interrupt a run. ``hooks`` are the run's callbacks
    (gmgbench.harness.callbacks, progress included); without them, ``progress`` makes its own display
    (see :func:`gmgbench.harness.callbacks.run_hooks`).
    """
    if hooks is None:
        hooks = run_hooks(run, workdir, progress)
        try:
            return train_run(run, workdir, stop_after=stop_after, on_step=on_step, hooks=hooks)
        finally:
            hooks.close()
    cfg = run.train
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = _device(cfg.device)
    dataset = datasets.load(run.dataset, run.dataset_root)

    torch.manual_seed(run.seed)
    model = build_model(run, dataset).to(device)
    channels_last = cfg.memory_format == "channels_last"
    if channels_last:  # before Adam: its moments take the parameters' layout
        model = model.to(memory_format=torch.channels_last)
    objective, regs = _build_terms(run)
    components = [objective, *regs]
    for c in components:  # methods with modules of their own (FactorVAE's discriminator) build them
        c.setup(cfg.latent_dim, device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    noise = torch.Generator(device=device).manual_seed(run.seed)
    sampler = np.random.RandomState(run.seed)
    step, curve, elapsed = 0, [], 0.0
    sums: dict[str, float] = {}
    health = HealthMonitor([r.name for r in regs], [r.cfg.weight for r in regs], cfg.health_every)
    params = list(model.parameters())

    code = current_code(run)
    ckpt_path = workdir / "checkpoint.pt"
    for tmp in workdir.glob(".*.tmp*"):  # left by a process killed mid-write (we hold the run now)
        tmp.unlink(missing_ok=True)
    if ckpt_path.is_file():
        ckpt = checkpoints.load(ckpt_path, map_location=device, what="checkpoint")
        changed = code_changes(ckpt.get("method_code"), now=code)  # by content, not by folder
        if changed:
            raise StaleCheckpoint(f"{ckpt_path}: written by other method code ({'; '.join(changed)}); resuming would "
                                  "mix two versions of the method: `gmgbench run STUDY --force` starts the run over "
                                  "(the old files stay until the new run completes)")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        noise.set_state(ckpt["noise"].cpu() if device.type == "cpu" else ckpt["noise"])
        checkpoints.set_sampler_state(sampler, ckpt["sampler"])
        _load_method_states(run, components, ckpt.get("methods"))
        step, curve, elapsed, sums = ckpt["step"], ckpt["curve"], ckpt["elapsed"], ckpt.get("window", {})
        health.load_state(ckpt.get("health"))
        torch.set_rng_state(ckpt["torch_rng"].cpu())
        if ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        log.info("%s: resumed at step %d", run.name, step)

    def checkpoint() -> None:
        # Tensors and plain containers only: loads with weights_only=True (harness/checkpoints.py).
        checkpoints.save({
            "model": model.state_dict(), "optimizer": opt.state_dict(), "noise": noise.get_state(),
            "sampler": checkpoints.sampler_state(sampler), "step": step, "curve": curve, "elapsed": elapsed,
            "method_code": code,  # resuming under other method code is refused
            "window": sums,  # the logging window in progress, so curve points survive a resume
            "health": health.state(),
            "methods": [c.state_dict() for c in components],  # what methods train themselves
            # Methods may draw from torch's global RNG (HFS's latent pairs, Hutchinson
            # probes): it is part of the run's state too.
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        }, ckpt_path)

    hooks.on_run_start(step)
    model.train()
    ran = 0
    t0 = time.perf_counter()
    while step < cfg.steps:
        factors = dataset.sample_factors(cfg.batch_size, sampler)
        x = dataset.training_batch(factors, sampler, device)
        if channels_last:  # the default path keeps the batch exactly as it always was
            x = x.contiguous(memory_format=torch.channels_last)
        out = model(x, generator=noise, dataset_size=dataset.dataset_size)
        out.step = step
        loss, logs = call_checked(objective, out)
        terms, values = [], []
        for reg in regs:
            term, rlogs = call_checked(reg, out)
            loss = loss + reg.cfg.weight * term
            logs.update({f"{reg.name}.{k}": v for k, v in rlogs.items()})
            terms.append(term)
            values.append(float(term.detach()))
            logs[reg.name] = values[-1]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{run.name}: loss is {loss.item()} at step {step}; lower the learning rate or the weights")
        # Health: each term's own gradient on a retained graph, before (and without touching)
        # the ordinary backward, so the step is the one an unmeasured run takes.
        measured = health.term_grads(terms, params) if health.due(step) else None
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if measured is not None:
            health.record_grads(step, measured, params)
            del measured
        opt.step()
        for c in components:
            logs.update(update_checked(c, out))
        step += 1
        ran += 1
        logs["loss"] = float(loss.detach())
        health.record_values(values, logs["loss"])
        for k, v in logs.items():
            sums[k] = sums.get(k, 0.0) + v
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
            curve.append({"step": step, **{k: v / n for k, v in sorted(sums.items())}})
            sums = {}
            hooks.on_log(step, curve[-1])
        hooks.on_step(step, logs)
        if on_step is not None:
            on_step(step)
        stop = (stop_after is not None and ran >= stop_after) or _STOP.is_set()
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
            elapsed += time.perf_counter() - t0
            t0 = time.perf_counter()
            checkpoint()
            if stop and step < cfg.steps:
                raise Interrupted(f"{run.name}: stopped after {ran} steps at step {step} (checkpointed)")
    elapsed += time.perf_counter() - t0

    checkpoints.save({"model": model.state_dict(), "run": run.to_dict()}, workdir / "model.pt")
    _write_curve_csv(curve, workdir / "curve.csv")
    return {
        "health": health.summary(curve, [r.name for r in regs]),
        "steps": step,
        "final": curve[-1] if curve else {},
        "curve": _downsample(curve, CURVE_POINTS),
        "train_seconds": elapsed,
        "seconds_per_step": elapsed / max(step, 1),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
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


def load_model(workdir: Path, device: str | torch.device = "cpu") -> tuple[VAE, RunSpec]:
    """The trained model in ``workdir/model.pt`` (loaded weights-only: a planted pickle never runs)."""
    path = Path(workdir) / "model.pt"
    fix = "retrain the run with `gmgbench run STUDY --force`"
    ckpt = checkpoints.load(path, map_location=device, what="model", fix=fix)
    try:
        run = RunSpec.from_dict(ckpt["run"])
        dataset_channels = ckpt["model"]["encoder.0.weight"].shape[1]
        model = VAE(num_channels=dataset_channels, latent_dim=run.train.latent_dim).to(device)
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise StoreError(f"{path}: not a gmgbench model ({type(err).__name__}: {err}); {fix}") from None
    model.eval()
    return model, run


def representation_function(model: VAE, device: torch.device | str = "cpu", batch_size: int = 256):
    """NHWC float batch → posterior means ``(B, D)``, encoded in large batches; its ``decode``
    attribute maps codes back to images."""

    @torch.no_grad()
    def encode(x: np.ndarray) -> np.ndarray:
        codes = []
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device).permute(0, 3, 1, 2)
            codes.append(model.encode(xb)[0].cpu().numpy())
        return np.concatenate(codes) if codes else np.zeros((0, model.latent_dim), np.float32)

    @torch.no_grad()
    def decode(z: np.ndarray) -> np.ndarray:
        """Codes ``(B, D)`` → decoded images ``(B, H, W, C)`` (Bernoulli means), for metrics
        that judge the decoder (metrics/geometry.py)."""
        images = []
        for i in range(0, len(z), batch_size):
            zb = torch.from_numpy(np.ascontiguousarray(z[i:i + batch_size], dtype=np.float32)).to(device)
            images.append(torch.sigmoid(model.decode(zb)).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(images)

    encode.decode = decode  # type: ignore[attr-defined]
    return encode


def evaluate_model(model: VAE, run: RunSpec, metric_settings: dict[str, dict] | None = None,
                   device: torch.device | str = "cpu", on_metric: Callable[[str, int, int], None] | None = None,
                   ) -> dict[str, dict[str, float]]:
    from gmgbench import metrics
    settings = run.evaluation.settings() if metric_settings is None else metric_settings
    dataset = datasets.load(run.dataset, run.dataset_root)
    model.eval()
    return metrics.evaluate(dataset, representation_function(model, device),
                            {k: dict(v or {}) for k, v in settings.items()}, random_seed=run.evaluation.seed,
                            on_metric=on_metric)


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
        workdir = store.next_workdir(rid)
        if force != "resume":  # "resume": a requeued Slurm job of `launch --force` goes on with its own retraining
            shutil.rmtree(workdir, ignore_errors=True)  # an earlier, interrupted --force: start over
    else:
        workdir = store.workdir(rid)
        ckpt = workdir / "checkpoint.pt"
        if repair and ckpt.is_file():  # a checkpoint this code cannot resume goes aside, the run starts over
            try:
                changed = code_changes(checkpoints.load(ckpt).get("method_code"), now=current_code(run))
                if changed:
                    raise StoreError(f"{ckpt}: written by other method code ({'; '.join(changed)})")
            except StoreError as err:
                log.warning("%s; moved to %s", err, store.quarantine(ckpt))
    hooks = run_hooks(run, store.workdir(rid), progress, callbacks)
    try:
        result = _run_and_store(run, store, workdir, force, stop_after, hooks)
        hooks.on_run_end(result)
        return result
    finally:
        hooks.close()


def _run_and_store(run: RunSpec, store: ResultsStore, workdir: Path, force: bool, stop_after: int | None,
                   hooks: Hooks) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    try:
        training = train_run(run, workdir, stop_after=stop_after, hooks=hooks)
        t_eval = time.perf_counter()
        model, _ = load_model(workdir, _device(run.train.device))
        scores = evaluate_model(model, run, device=_device(run.train.device), on_metric=hooks.on_eval)
        eval_seconds = time.perf_counter() - t_eval
    except Interrupted:
        raise
    except Exception as err:  # not BaseException: a requeue's SystemExit or Ctrl-C is no failure
        import traceback

        store.write_failure(run.run_id, {
            "run": run.to_dict(), "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(), "workdir": str(workdir),
        })
        raise
    _check_finite(run, scores)
    result = {
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
    if force:
        store.commit_next(run.run_id, result)
    else:
        store.write_result(run.run_id, result)
    return result


def _check_finite(run: RunSpec, scores: dict[str, dict[str, float]]) -> None:
    for mname, values in scores.items():
        for key, v in values.items():
            if isinstance(v, float) and math.isnan(v):
                log.warning("%s: metric %s.%s is NaN", run.name, mname, key)
