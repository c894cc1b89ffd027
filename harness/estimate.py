"""How long a study takes: steps × seconds per step, weighted by each method's cost.

A β-VAE step is the unit. The other terms add what they were measured to add to it, side
by side, on 2 CPU cores (docs/performance.md, docs/methods.md); on a GPU the GW solve weighs
relatively more or less, so calibrate with a measured ``step_seconds`` from your cluster.
Evaluation is not counted (exact DCI is CPU work on the job's cores; see docs/metrics.md).
"""
from __future__ import annotations

import statistics
import time
from typing import Iterable

from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import RunSpec

__all__ = ["RELATIVE_COST", "ASSUMED_RANGE", "relative_cost", "measured_step_seconds", "probe_step_seconds",
           "estimate_hours", "describe"]

# Extra cost of a term, as a fraction of one β-VAE step (measured on CPU, batch 64).
RELATIVE_COST = {"beta_vae": 1.0, "beta_tcvae": 1.0, "hfs": 0.15, "dst": 0.45, "gmg": 0.65, "jacobian": 1.4}
_UNKNOWN = 0.5  # a plugin term we have not measured


def relative_cost(run: RunSpec) -> float:
    """Cost of one of ``run``'s steps in β-VAE steps (batch size scales it linearly)."""
    cost = RELATIVE_COST.get(run.objective, 1.0)
    cost += sum(RELATIVE_COST.get(name, _UNKNOWN) for name, _ in run.regularisers)
    return cost * run.train.batch_size / 64


# Assumed seconds per β-VAE step (batch 64) when nothing was measured: GPUs (pending a
# measurement, docs/slurm.md), and one CPU core with one torch thread (measured: ~0.12-0.25 s).
ASSUMED_RANGE = {"GPU": (0.005, 0.02), "CPU-job": (0.1, 0.3)}


def _device_kind(result: dict) -> str | None:
    device = (result.get("training") or {}).get("device") or (result.get("provenance") or {}).get("device")
    if not device:
        return None
    return "CPU-job" if str(device).startswith("cpu") else "GPU"


def measured_step_seconds(store: ResultsStore, unit: str | None = None) -> float | None:
    """Median seconds per β-VAE-equivalent step over the store's finished runs, or None;
    with ``unit`` ("GPU" or "CPU-job"), only over runs trained on that kind of device."""
    from gmgbench.harness.spec import RunSpec as _RunSpec

    per_unit = []
    if not store.runs_dir().is_dir():
        return None
    for result in store.iter_results():
        seconds = (result.get("training") or {}).get("seconds_per_step")
        kind = _device_kind(result)
        if not seconds or "config" not in result or (unit is not None and kind not in (None, unit)):
            continue  # a result that does not say its device counts for either kind
        per_unit.append(seconds / relative_cost(_RunSpec.from_dict(result["config"])))
    return statistics.median(per_unit) if per_unit else None


def probe_step_seconds(run: RunSpec, steps: int = 30) -> float:
    """Seconds per β-VAE step measured here: ``steps`` steps of a plain β-VAE on ``run``'s
    dataset and batch size (procedural dSprites if its files are not here), in a temporary
    folder, the first steps (warm-up) left out."""
    import dataclasses
    import tempfile
    from pathlib import Path

    from gmgbench.harness import data
    from gmgbench.harness.train import train_run

    dataset, root = run.dataset, run.dataset_root
    try:
        data.load(dataset, root)
    except Exception:  # noqa: BLE001 - a probe of speed only needs some images of the right size
        dataset, root = "dsprites_procedural", None
    probe = dataclasses.replace(
        run, dataset=dataset, dataset_root=root, objective="beta_vae", objective_params={}, regularisers=(),
        train=dataclasses.replace(run.train, steps=steps + 5, log_every=1, checkpoint_every=10 ** 9, health_every=0))
    times = []

    def tick(step: int) -> None:
        times.append(time.perf_counter())

    with tempfile.TemporaryDirectory(prefix="gmgbench-probe-") as tmp:
        train_run(probe, Path(tmp), progress=False, on_step=tick)
    warm = times[5:]
    return (warm[-1] - warm[0]) / (len(warm) - 1) / relative_cost(probe)  # per β-VAE step at batch 64


def estimate_hours(runs: Iterable[RunSpec], step_seconds: float) -> float:
    return sum(r.train.steps * relative_cost(r) for r in runs) * step_seconds / 3600


def _hours(h: float) -> str:
    return f"{h:,.0f}" if h >= 10 else f"{h:.1f}" if h >= 1 else f"{h:.2g}"


def describe(runs: list[RunSpec], store: ResultsStore, step_seconds: float | None, unit: str = "GPU",
             probe_seconds: float | None = None, also: Iterable[ResultsStore] = ()) -> str:
    """One or two lines for ``--dry-run``: the estimate in ``unit``-hours ("GPU" or
    "CPU-job") and where its step time came from: the profile's ``step_seconds``, a probe run
    here, the median of this store's (then ``also``'s) finished runs on that kind of device,
    else an assumed range for that kind of device."""
    units = sum(r.train.steps * relative_cost(r) for r in runs)
    source = "the profile's step_seconds"
    if step_seconds is None and probe_seconds is not None:
        step_seconds, source = probe_seconds, "a probe run here (--probe)"
    if step_seconds is None:
        step_seconds = measured_step_seconds(store, unit)
        source = f"the median of this store's finished runs on a {unit.split('-')[0]}"
    for other in also:
        if step_seconds is None:
            step_seconds = measured_step_seconds(other, unit)
            source = f"the median of finished runs in {other.root} on a {unit.split('-')[0]}"
    if step_seconds is None:
        lo_s, hi_s = ASSUMED_RANGE.get(unit, ASSUMED_RANGE["GPU"])
        lo, hi = units * lo_s / 3600, units * hi_s / 3600
        return (f"estimated training time: {units:.3g} beta-VAE-step equivalents; {_hours(lo)} to {_hours(hi)} "
                f"{unit}-hours at {lo_s * 1000:g} to {hi_s * 1000:g} ms per step (an assumption: set step_seconds in "
                # --probe times this machine's CPU: a hint for CPU jobs only (runs with a GPU ignore it)
                f"the profile from a measured run{'' if unit == 'GPU' else ', or measure here with --probe'})")
    return (f"estimated training time: {_hours(units * step_seconds / 3600)} {unit}-hours "
            f"({units:.3g} beta-VAE-step equivalents at {step_seconds * 1000:.1f} ms per step, from {source})")
