"""Markdown building blocks shared by the board's sections (:mod:`~gmgbench.harness.leaderboard.render`,
:mod:`~gmgbench.harness.leaderboard.evidence`): number and cell formats, escaping, tables."""
from __future__ import annotations

import math

from tabulate import tabulate

__all__ = ["fmt", "cell", "status_note", "esc", "table", "seeds", "claims_method"]


def fmt(x: float, digits: int) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def cell(mean: float, std: float, n: int, digits: int) -> str:
    """``mean ± std (n)``; ``—`` without values, ``± n/a`` for a single seed."""
    if n == 0 or not math.isfinite(mean):
        return "—"
    spread = f"{std:.{digits}f}" if math.isfinite(std) else "n/a"
    return f"{mean:.{digits}f} ± {spread} ({int(n)})"


def status_note(row) -> str:
    parts = [f"{int(row[k])} {k}" for k in ("failed", "missing") if int(row[k])]
    versions = row.get("code_versions", 0)
    if isinstance(versions, (int, float)) and versions == versions and versions > 1:
        parts.append(f"mixed code: {int(versions)} versions averaged (--allow-stale)")
    return ", ".join(parts)


def esc(text: str) -> str:
    # A newline inside a label would end the table row and split the table.
    return " ".join(str(text).splitlines()).replace("|", "\\|")


def table(headers: list[str], rows: list[list[str]], align: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True, colalign=align)


def seeds(values) -> str:
    return ", ".join(str(int(s)) for s in values)


def claims_method(o) -> str:
    """The claims test and correction in a few words."""
    test = ("paired t-interval on per-seed differences" if o.claims_test == "paired"
            else "Welch's t-interval (unpaired)")
    return test + (", Holm-corrected across the board's comparisons" if o.claims_correction == "holm"
                   else ", not corrected for multiple comparisons")
