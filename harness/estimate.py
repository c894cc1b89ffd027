"""How long a study takes: steps × seconds per step, weighted by each method's cost.

A β-VAE step is the unit. The other terms add what they were measured to add to it, side
by side, on 2 CPU cores (docs/performance.md, docs/methods.md); on a GPU the GW solve weighs
relatively more or less, so calibrate with a measured ``step_seconds`` from your cluster.
Evaluation is not counted (exact DCI is CPU work on the job's cores; see docs/metrics.md).
"""
from __future__ import annotations

import statistics
from typing import Iterable

from harness.results import ResultsStore
from harness.spec import RunSpec

__all__ = ["RELATIVE_COST", "relative_cost", "measured_step_seconds", "estimate_hours", "describe"]

# Extra cost of a term, as a fraction of one β-VAE step (measured on CPU, batch 64).
RELATIVE_COST = {"beta_vae": 1.0, "beta_tcvae": 1.0, "hfs": 0.15, "dst": 0.45, "gmg": 0.65, "jacobian": 1.4}
_UNKNOWN = 0.5  # a plugin term we have not measured


def relative_cost(run: RunSpec) -> float:
    """Cost of one of ``run``'s steps in β-VAE steps (batch size scales it linearly)."""
    cost = RELATIVE_COST.get(run.objective, 1.0)
    cost += sum(RELATIVE_COST.get(name, _UNKNOWN) for name, _ in run.regularisers)
    return cost * run.train.batch_size / 64


def measured_step_seconds(store: ResultsStore) -> float | None:
    """Median seconds per β-VAE-equivalent step over the store's finished runs, or None."""
    from harness.spec import RunSpec as _RunSpec

    per_unit = []
    for result in store.iter_results():
        seconds = result.get("training", {}).get("seconds_per_step")
        if seconds:
            per_unit.append(seconds / relative_cost(_RunSpec.from_dict(result["config"])))
    return statistics.median(per_unit) if per_unit else None


def estimate_hours(runs: Iterable[RunSpec], step_seconds: float) -> float:
    return sum(r.train.steps * relative_cost(r) for r in runs) * step_seconds / 3600


def describe(runs: list[RunSpec], store: ResultsStore, step_seconds: float | None, unit: str = "GPU") -> str:
    """One or two lines for ``--dry-run``: the estimate and where its step time came from."""
    units = sum(r.train.steps * relative_cost(r) for r in runs)
    source = "the profile's step_seconds"
    if step_seconds is None:
        step_seconds = measured_step_seconds(store)
        source = "the median of this store's finished runs"
    if step_seconds is None:
        lo, hi = units * 0.005 / 3600, units * 0.02 / 3600
        return (f"estimated training time: {units:.3g} beta-VAE-step equivalents; {lo:,.0f} to {hi:,.0f} {unit}-hours "
                f"at 5 to 20 ms per step (an assumption: set step_seconds in the profile from a measured run)")
    return (f"estimated training time: {units * step_seconds / 3600:,.0f} {unit}-hours "
            f"({units:.3g} beta-VAE-step equivalents at {step_seconds * 1000:.1f} ms per step, from {source})")
