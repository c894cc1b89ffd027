"""Regulariser health on leaderboards: per-run columns, per-entry verdicts, the inert flag.

A leaderboard row whose regulariser did not act is the base model with a perturbed trajectory,
not the method: it is flagged so that a reader cannot mistake a no-op for a result.

Per run (``runs`` columns ``health`` and ``grad_share``, from :mod:`gmgbench.harness.health`):
``none`` (no regulariser), ``unknown`` (a result from before health was recorded), ``inert``
(some term's gradient share was below 1 % at more than half of its measured steps) or
``active``; ``grad_share`` is the smallest of the terms' median shares.

Per board entry (its shown setting's finished runs): **inert** when more than half of the runs
are inert; ``unknown`` when no run has a record; otherwise active (with how many runs were inert).
A table built before this existed (an old release's ``runs.parquet``) has no health values at
all, and renders exactly as it did.
"""
from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["run_columns", "entry_health", "has_health", "FLAG", "EXPLANATION"]

FLAG = "⚠ inert"
EXPLANATION = ("⚠ inert: the regulariser's gradient share on the parameters it shares with the base objective "
               "was below 1 % at more than half of the measured steps in most of the entry's runs, so the row "
               "measures the base model, not the method (see docs/methods.md, Regulariser health).")


def run_columns(result: dict[str, Any]) -> dict[str, Any]:
    """``{"health": state, "grad_share": float}`` of one stored result."""
    from gmgbench.harness.health import health_state

    state = health_state(result)
    shares = [((t or {}).get("grad_share") or {}).get("median") for t in
              ((result.get("health") or {}).get("terms") or {}).values()]
    shares = [float(s) for s in shares if isinstance(s, (int, float))]
    return {"health": state, "grad_share": min(shares) if shares else math.nan}


def has_health(runs: pd.DataFrame) -> bool:
    """Whether the per-run table carries health at all (tables from before it do not)."""
    return "health" in runs.columns and bool((runs["health"].astype(str) != "").any())


def entry_health(runs: pd.DataFrame, ds: str, method: str, setting: str) -> dict[str, Any]:
    """``state`` (none/unknown/inert/active), run counts and the median gradient share of one entry."""
    m = (runs["dataset"] == ds) & (runs["method"] == method) & (runs["setting"] == setting) & (runs["status"] == "done")
    sub = runs.loc[m]
    states = sub["health"].astype(str).tolist() if "health" in sub.columns else []
    n = len(states)
    n_inert = states.count("inert")
    n_known = n_inert + states.count("active")
    shares = sub["grad_share"].dropna() if "grad_share" in sub.columns else pd.Series(dtype=float)
    share = float(shares.median()) if len(shares) else math.nan
    if n == 0 or all(s in ("none", "") for s in states):
        state = "none"
    elif n_known == 0:
        state = "unknown"
    elif n_inert * 2 > n_known:
        state = "inert"
    else:
        state = "active"
    return {"state": state, "runs": n, "inert": n_inert, "known": n_known, "share": share}


def cell(h: dict[str, Any]) -> str:
    """The Health column's text for an entry."""
    share = f"median share {100 * h['share']:.2g} %" if math.isfinite(h["share"]) else ""
    if h["state"] == "none":
        return "—"
    if h["state"] == "unknown":
        return "health unknown (not recorded)"
    if h["state"] == "inert":
        return f"**{FLAG}** ({h['inert']}/{h['known']} runs; {share})"
    extra = f", {h['inert']}/{h['known']} runs inert" if h["inert"] else ""
    return f"active ({share}{extra})"
