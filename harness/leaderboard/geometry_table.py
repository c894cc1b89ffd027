"""The board's held-out geometry table: the scale-free Gromov-Monge gap and collapsed codes.

``gmgbench.metrics.geometry`` stores, per run, ``<side>_<cost>_gmg_rel`` (the held-out gap divided by
the map's distortion, in [0, 1]) and ``collapsed`` (1 when fewer than its minimum of latent
dimensions were active; the gap keys are then NaN). The main table shows the metrics the spec
ranks by; this table shows, per entry of a dataset, what the regulariser is meant to change, on
the judged seeds, and how many runs had no geometry to measure. Results without these keys
(every release before them) get no table, so those boards render as they did.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from gmgbench.harness.leaderboard.text import cell, esc, table

__all__ = ["geometry_columns", "geometry_section"]

_PREFIX, _SUFFIX = "geometry.", "_gmg_rel"
_SIDES = ("dec", "enc")  # the decoder first: the paper's best side
_COSTS = ("cos", "ccos", "scl2sq", "l2sq")


def geometry_columns(runs: pd.DataFrame) -> list[str]:
    """The relative-gap columns present with at least one value, decoder first, in cost order."""
    out = []
    for side in _SIDES:
        for cost in _COSTS:
            col = f"{_PREFIX}{side}_{cost}{_SUFFIX}"
            if col in runs.columns and np.isfinite(pd.to_numeric(runs[col], errors="coerce")).any():
                out.append(col)
    return out


def _label(col: str) -> str:
    return col[len(_PREFIX):-len(_SUFFIX)].replace("_", " ")


def geometry_section(judged: pd.DataFrame, ds: str, entries: list[tuple[str, str, str]], digits: int) -> list[str]:
    """Markdown for one dataset: ``entries`` are ``(shown name, method, setting)`` in board order."""
    cols = geometry_columns(judged[judged["dataset"] == ds])
    has_collapsed = "geometry.collapsed" in judged.columns
    if not cols and not has_collapsed:
        return []
    rows = []
    for name, method, setting in entries:
        sub = judged[(judged["dataset"] == ds) & (judged["method"] == method) & (judged["setting"] == setting)
                     & (judged["status"] == "done")]
        row = [esc(name)]
        for col in cols:
            vals = pd.to_numeric(sub[col], errors="coerce").to_numpy(float)
            vals = vals[np.isfinite(vals)]
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
            row.append(cell(float(vals.mean()) if len(vals) else math.nan, std, len(vals), digits))
        if has_collapsed:
            flags = pd.to_numeric(sub["geometry.collapsed"], errors="coerce")
            row.append(f"{int((flags == 1).sum())}/{len(sub)}")
        rows.append(row)
    headers = ["Method"] + [f"{_label(c)} GMG/DST" for c in cols] + (["Collapsed"] if has_collapsed else [])
    align = ["left"] + ["right"] * len(cols) + (["center"] if has_collapsed else [])
    return [
        f"**Held-out geometry on {ds}** (judged seeds): the Gromov-Monge gap of the decoder (dec) and encoder (enc) "
        "on held-out batches divided by the map's distortion, per cost (`ccos`: cosine of centred points, which a "
        "shared latent offset cannot shrink); 0 = no coupling found beats the map's own, 1 = an isometric copy "
        "scrambled. Exact GW from several starts, a lower bound of the true gap (docs/metrics.md). Mean ± std "
        "(runs with a value). **Collapsed**: runs whose codes had too few active dimensions to have a geometry; "
        "their gap is not defined and not averaged.",
        "",
        table(headers, rows, align),
        "",
    ]
