"""Regulariser health: does each regulariser term act on training, and how much?

"A method that does not act is a defect, not a result." Every run records, per regulariser term
(``result["health"]["terms"][name]``):

- ``grad_share``: at every ``train.health_every``-th step (step 0 included), the term's share
  of the gradient on the parameters it shares with the base objective,
  ``s = ‖λ∇R‖ / (‖λ∇R‖ + ‖∇L_base‖)`` over those parameters (0: the term does not act;
  0.5: it pulls as hard as the objective; → 1: it dominates). ``∇R`` is taken with
  :func:`torch.autograd.grad` on a retained graph *before* the step's ordinary backward, and
  ``∇L_base`` is the step's total gradient minus the terms', so measuring changes neither the
  trajectory nor any random draw (tests/harness/test_health.py checks bit-for-bit equality).
  ``cos`` is the cosine between ``∇R`` and ``∇L_base`` (negative: the term pulls against the
  objective). Stored as a summary (mean, median, quartiles, final, fraction of measurements
  below :data:`INERT_SHARE`) and a downsampled series.
- ``loss_ratio``: the mean over every step of ``|λ·R| / |loss|``.
- ``zero_windows``: the fraction of logged windows (``train.log_every``) whose mean term was
  exactly 0 (a clipped estimator that never fires).
- ``negative_windows``: the fraction of logged windows whose mean term was below 0 (GMG's
  ``plain`` estimator: the solve's plan cost more than the map's own coupling, DST).
- ``gw_failed_rate``, ``gw_lost_rate`` and ``gw_iters``: for terms that solve a GW problem, the
  mean of their ``gw_failed``, ``gw_lost`` and ``gw_iters`` logs over training;
  ``gw_lost_rate`` is the fraction of steps whose plan had a higher entropic objective than
  the map's own coupling ``I/n`` (methods/regularisers/gmg.py), averaged over the logged
  windows (equal-sized, so it is the fraction of steps).
- ``inert``: see :func:`is_inert`.

Old results have no ``health`` key: :func:`health_state` calls them ``"unknown"``, never healthy.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # torch only where gradients are measured: status and leaderboards stay light
    import torch

__all__ = ["INERT_SHARE", "INERT_FRACTION", "HealthMonitor", "is_inert", "health_state", "summarise_health",
           "term_names", "status_rows", "format_health"]

#: A term whose gradient share is below this at a measured step did not act at that step.
INERT_SHARE = 0.01
#: A term is inert when it did not act at more than this fraction of the measured steps.
INERT_FRACTION = 0.5
SERIES_POINTS = 100  # the result keeps a downsampled share series


def term_names(names: Sequence[str]) -> list[str]:
    """Unique keys for a run's regulariser terms: the name, ``name#2`` for a repeated one."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


class HealthMonitor:
    """Collects one run's health as it trains; its :meth:`state` goes into checkpoints."""

    def __init__(self, names: Sequence[str], weights: Sequence[float], every: int):
        self.names = term_names(names)
        self.weights = [float(w) for w in weights]
        self.every = int(every)
        self.shares: dict[str, list[list[float]]] = {n: [] for n in self.names}  # [step, share, cos]
        self.ratio_sum = {n: 0.0 for n in self.names}
        self.ratio_n = 0

    # -- checkpointing -------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"shares": self.shares, "ratio_sum": self.ratio_sum, "ratio_n": self.ratio_n}

    def load_state(self, state: dict[str, Any] | None) -> None:
        if state:
            self.shares = {n: [list(r) for r in state["shares"].get(n, [])] for n in self.names}
            self.ratio_sum = {n: float(state["ratio_sum"].get(n, 0.0)) for n in self.names}
            self.ratio_n = int(state["ratio_n"])

    # -- during training -----------------------------------------------------------------
    def due(self, step: int) -> bool:
        return bool(self.names) and self.every > 0 and step % self.every == 0

    def term_grads(self, terms: Sequence["torch.Tensor"], params: Sequence["torch.nn.Parameter"]) -> list[list]:
        """Each unweighted term's gradient on ``params`` (``None`` where unused), graph kept."""
        import torch

        grads = []
        for term in terms:
            if term.requires_grad:
                grads.append(list(torch.autograd.grad(term, params, retain_graph=True, allow_unused=True)))
            else:  # a constant term (e.g. a clipped estimate at a failed solve) has no gradient
                grads.append([None] * len(params))
        return grads

    def record_grads(self, step: int, term_grads: list[list], params: Sequence["torch.nn.Parameter"]) -> None:
        """After the ordinary backward: split ``p.grad`` into the base objective's part and each
        term's, and record each term's share on the parameters it shares with the objective."""
        import torch

        with torch.no_grad():
            self._record(step, term_grads, [None if p.grad is None else p.grad.clone() for p in params])

    def _record(self, step: int, term_grads: list[list], base: list) -> None:
        import torch

        for w, grads in zip(self.weights, term_grads):
            for i, g in enumerate(grads):
                if g is not None and base[i] is not None:
                    base[i].sub_(g, alpha=w)
        for name, w, grads in zip(self.names, self.weights, term_grads):
            shared = [i for i, g in enumerate(grads) if g is not None and base[i] is not None]
            if not shared:
                self.shares[name].append([float(step), 0.0, float("nan")])
                continue
            r = torch.cat([grads[i].flatten() for i in shared]) * abs(w)
            b = torch.cat([base[i].flatten() for i in shared])
            nr, nb = float(r.norm()), float(b.norm())
            share = nr / (nr + nb) if nr + nb > 0 else 0.0
            cos = float(torch.dot(r, b)) / (nr * nb) * (1.0 if w >= 0 else -1.0) if nr > 0 and nb > 0 else float("nan")
            self.shares[name].append([float(step), share, cos])

    def record_values(self, term_values: Iterable[float], loss: float) -> None:
        """Every step: ``|λ·R| / |loss|`` per term (floats the loop has already logged)."""
        denom = abs(loss) if loss != 0 else float("inf")
        for name, w, v in zip(self.names, self.weights, term_values):
            self.ratio_sum[name] += abs(w * v) / denom
        self.ratio_n += 1

    # -- at the end ----------------------------------------------------------------------
    def summary(self, curve: list[dict[str, float]], reg_names: Sequence[str]) -> dict[str, Any]:
        """The ``health`` record of a result, from what was measured and the full curve."""
        terms = {}
        for key, raw_name, w in zip(self.names, reg_names, self.weights):
            rec: dict[str, Any] = {"weight": w}
            rows = np.asarray(self.shares[key], dtype=float).reshape(-1, 3)
            if len(rows):
                s = rows[:, 1]
                rec["grad_share"] = {
                    "mean": float(s.mean()), "median": float(np.median(s)),
                    "q25": float(np.quantile(s, 0.25)), "q75": float(np.quantile(s, 0.75)),
                    "min": float(s.min()), "max": float(s.max()), "final": float(s[-1]),
                    "frac_below": float((s < INERT_SHARE).mean()), "n": int(len(s)),
                }
                cos = rows[:, 2][np.isfinite(rows[:, 2])]
                rec["cos_mean"] = float(cos.mean()) if len(cos) else None
                idx = np.unique(np.linspace(0, len(rows) - 1, min(len(rows), SERIES_POINTS)).round().astype(int))
                rec["series"] = [[int(rows[i, 0]), round(float(rows[i, 1]), 6)] for i in idx]
            if self.ratio_n:
                rec["loss_ratio"] = self.ratio_sum[key] / self.ratio_n
            # The curve's keys are the loop's: the term under its registered name, its logs
            # prefixed by it (a repeated name shares them; its windows count as the first's).
            vals = [row[raw_name] for row in curve if raw_name in row]
            rec.update(_curve_terms(curve, raw_name))
            rec["inert"] = is_inert(rec)
            terms[key] = rec
        return {"every": self.every, "inert_share": INERT_SHARE, "inert_fraction": INERT_FRACTION, "terms": terms}


_GW_LOGS = (("gw_failed", "gw_failed_rate"), ("gw_lost", "gw_lost_rate"), ("gw_iters", "gw_iters"))


def _curve_terms(curve: list[dict[str, float]], name: str) -> dict[str, float]:
    """What the logged windows say about a term: zero and negative windows, and the means of
    its GW logs (absent where the term did not log them, e.g. results from before ``gw_lost``)."""
    rec: dict[str, float] = {}
    vals = [row[name] for row in curve if name in row]
    if vals:
        rec["zero_windows"] = float(np.mean([v == 0.0 for v in vals]))
        rec["negative_windows"] = float(np.mean([v < 0.0 for v in vals]))
    for log_key, out_key in _GW_LOGS:
        xs = [row[f"{name}.{log_key}"] for row in curve if f"{name}.{log_key}" in row]
        if xs:
            rec[out_key] = float(np.mean(xs))
    return rec


def is_inert(term: dict[str, Any]) -> bool | None:
    """Inert: the gradient share was below :data:`INERT_SHARE` (1 %) at more than
    :data:`INERT_FRACTION` (half) of the measured steps. ``None`` when it was not measured."""
    gs = term.get("grad_share")
    if not gs or not gs.get("n"):
        return None
    return bool(gs["frac_below"] > INERT_FRACTION)


def health_state(result: dict[str, Any]) -> str:
    """``"none"`` (no regulariser), ``"unknown"`` (not recorded), ``"inert"`` (any term inert)
    or ``"active"``, for one stored result."""
    regs = (result.get("config") or {}).get("regularisers") or []
    if not regs:
        return "none"
    health = result.get("health")
    if not isinstance(health, dict) or not health.get("terms"):
        return "unknown"
    flags = [is_inert(t) if isinstance(t, dict) else None for t in health["terms"].values()]
    if any(f is True for f in flags):
        return "inert"
    if any(f is None for f in flags):
        return "unknown"
    return "active"


def _fmt(x: float | None, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3g}"


def summarise_health(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method label, regulariser term) over the given results, for ``status``:
    runs, how many inert/unknown, median gradient share, mean |λR|/|loss|, zero and negative
    windows, GW failures, steps lost to the map's own coupling, and iterations."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for res in results:
        cfg = res.get("config") or {}
        label = cfg.get("method", res.get("name", "?"))
        regs = cfg.get("regularisers") or []
        if not regs:
            continue
        terms = (res.get("health") or {}).get("terms")
        if not terms:
            # No record (a result from before health): what the stored curve still says, with
            # the gradient share and the inert verdict unknown.
            terms = {f"{name} (curve only)": curve_health(res, name, float((r.get("params") or {}).get("weight", 1.0)))
                     for r in regs for name in [r.get("name", "?")]}
        else:
            # Keys added since a result was written (e.g. negative_windows) from its stored curve.
            curve = (res.get("training") or {}).get("curve") or []
            terms = {name: {**_curve_terms(curve, name.split("#")[0]), **rec} if isinstance(rec, dict) else rec
                     for name, rec in terms.items()}
        for name, rec in terms.items():
            groups.setdefault((label, name), []).append(rec)
    rows = []
    for (label, name), recs in sorted(groups.items()):
        def med(key, sub=None):
            xs = [(r.get(key) or {}).get(sub) if sub else r.get(key) for r in recs]
            xs = [x for x in xs if isinstance(x, (int, float))]
            return float(np.median(xs)) if xs else None
        rows.append({
            "method": label, "term": name, "runs": len(recs),
            "inert": sum(1 for r in recs if r.get("inert") is True) if any("inert" in r for r in recs) else "unknown",
            "grad share (median)": _fmt(med("grad_share", "median"), pct=True),
            "|λR|/|loss|": _fmt(med("loss_ratio")),
            "zero windows": _fmt(med("zero_windows"), pct=True),
            "negative windows": _fmt(med("negative_windows"), pct=True),
            "GW failed": _fmt(med("gw_failed_rate"), pct=True),
            "GW lost to own coupling": _fmt(med("gw_lost_rate"), pct=True),
            "GW iters": _fmt(med("gw_iters")),
        })
    return rows


def curve_health(result: dict[str, Any], name: str, weight: float) -> dict[str, Any]:
    """What a stored (downsampled) training curve says about a term without a health record:
    zero windows, GW failures and iterations, and ``|λ·R| / |loss|`` of the window means."""
    curve = (result.get("training") or {}).get("curve") or []
    rec: dict[str, Any] = _curve_terms(curve, name)
    if any(name in row for row in curve):
        ratios = [abs(weight * row[name]) / abs(row["loss"]) for row in curve if name in row and row.get("loss")]
        if ratios:
            rec["loss_ratio"] = float(np.mean(ratios))
    return rec


def status_rows(store, runs) -> list[dict[str, Any]]:
    """:func:`summarise_health` over the finished ``runs`` (RunSpecs) in ``store``, for
    ``gmgbench status``; a result that cannot be read is left to status's own checks."""
    results = []
    for run in runs:
        try:
            res = store.read_result(run.run_id)
        except Exception:  # noqa: BLE001 - status reports corrupt files itself; health skips them
            continue
        if isinstance(res, dict) and res.get("status", "done") == "done":
            results.append(res)
    return summarise_health(results)


def format_health(rows: list[dict[str, Any]]) -> list[str]:
    """The ``health:`` block of ``gmgbench status`` (no lines when no run has a regulariser)."""
    if not rows:
        return []
    from tabulate import tabulate

    table = tabulate([list(r.values()) for r in rows], headers=list(rows[0]), tablefmt="simple", disable_numparse=True)
    lines = ["regulariser health (finished runs; medians over runs; inert: share < 1 % at more than half "
             "of the measured steps):"]
    lines += ["  " + line for line in table.splitlines()]
    if any(isinstance(r["inert"], int) and r["inert"] for r in rows):
        lines.append("  an inert regulariser did not act: those runs measure the base model, not the method")
    return lines
