"""What changed from one published version to the next: each release's ``changes.md``
(rows, selected settings, run counts, means that moved beyond their std, average ranks, and
the publisher's notes first) and the study's ``CHANGELOG.md`` gathered from them, newest first.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from gmgbench.harness.fileio import atomic_write_text, load_json
from gmgbench.harness.leaderboard import render
from gmgbench.harness.leaderboard.aggregate import Aggregate
from gmgbench.harness.leaderboard.manifest import versions
from gmgbench.harness.leaderboard.options import LeaderboardError, Options

__all__ = ["changes", "write_changelog"]


def _key(row, all_settings: bool) -> tuple:
    return (row["dataset"], row["method"], row["setting"]) if all_settings else (row["dataset"], row["method"])


def _name(key: tuple) -> str:
    return " / ".join(str(k) for k in key)


def changes(agg: Aggregate, prev_dir: Path | None, manifest: dict[str, Any]) -> str:
    """What changed from the previous version: rows added/removed, selected settings, run
    counts, means that moved by more than their std (the larger of the two versions'; any
    move when neither has a std), and average ranks."""
    commit = str(manifest["git_commit"])
    commit = commit if commit.startswith("unknown") else commit[:12]  # the reason is kept whole
    head = f"## {manifest['version']} ({manifest['created_utc'][:10]}, code `{commit}`)"
    if manifest.get("notes"):  # what the publisher says, then what the tables show
        head += f"\n\n{manifest['notes']}"
    board = agg.board
    runs = agg.runs
    counts = {s: int((runs["status"] == s).sum()) for s in ("done", "failed", "missing")}
    if prev_dir is None:
        return (f"{head}\n\nFirst release: {len(board)} rows over {len(agg.datasets)} dataset(s); "
                f"{len(runs)} runs expected ({counts['done']} done, {counts['failed']} failed, "
                f"{counts['missing']} missing).\n")
    prev_m = load_json(prev_dir / "manifest.json", what="manifest", error=LeaderboardError)
    prev_opts = Options.from_dict(prev_m["options"])
    prev_table = pd.read_parquet(prev_dir / "data" / "aggregate.parquet")
    prev_board = prev_table[prev_table["selected"]]
    prev_ranks = pd.read_parquet(prev_dir / "data" / "ranks.parquet")
    lines = [head, "", f"Compared with {prev_m['version']}."]
    if prev_m["spec_sha256"] != manifest["spec_sha256"]:
        lines.append("- The study spec changed (sha256 "
                     f"`{prev_m['spec_sha256'][:12]}` → `{manifest['spec_sha256'][:12]}`).")
    o = agg.options
    if (prev_opts.all_settings, prev_opts.selection, prev_opts.held_out and prev_opts.selection_seeds) != \
            (o.all_settings, o.selection, o.held_out and o.selection_seeds):
        lines.append(f"- Selection changed: `{prev_opts.selection}`, {render.selection_protocol(prev_opts)} → "
                     f"`{o.selection}`, {render.selection_protocol(o)}; rows are compared by key.")
    if o.claims and (prev_opts.claims_test, prev_opts.claims_correction) != (o.claims_test, o.claims_correction):
        lines.append(f"- Claims method changed: {render.claims_method(prev_opts)} → {render.claims_method(o)}.")
    allset = agg.options.all_settings
    old = {_key(r, allset): r for _, r in prev_board.iterrows()}
    new = {_key(r, allset): r for _, r in board.iterrows()}
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    if added:
        lines.append("- Rows added: " + "; ".join(_name(k) for k in added) + ".")
    if removed:
        lines.append("- Rows removed: " + "; ".join(_name(k) for k in removed) + ".")
    d = agg.options.digits
    moved, runs_changed, setting_changed = [], [], []
    for k in (k for k in new if k in old):
        a, b = old[k], new[k]
        if a["setting"] != b["setting"]:
            setting_changed.append(f"{_name(k)}: `{a['setting']}` → `{b['setting']}`")
        if (int(a["done"]), int(a["failed"]), int(a["missing"])) != (int(b["done"]), int(b["failed"]), int(b["missing"])):
            runs_changed.append(f"{_name(k)}: {int(a['done'])}/{int(a['expected'])} → {int(b['done'])}/{int(b['expected'])} done")
        for c in agg.metrics:
            ma, mb = a.get(f"{c}.mean", math.nan), b.get(f"{c}.mean", math.nan)
            if not (math.isfinite(ma) and math.isfinite(mb)):
                continue
            sa, sb = a.get(f"{c}.std", math.nan), b.get(f"{c}.std", math.nan)
            tol = max(s for s in (sa, sb, 0.0) if math.isfinite(s))
            if abs(mb - ma) > tol:
                moved.append(f"{_name(k)} / {c}: {render.cell(ma, sa, int(a[f'{c}.n']), d)} → "
                             f"{render.cell(mb, sb, int(b[f'{c}.n']), d)} ({mb - ma:+.{d}f})")
    if setting_changed:
        lines.append("- Selected setting changed: " + "; ".join(setting_changed) + ".")
    if runs_changed:
        lines.append("- Runs changed: " + "; ".join(runs_changed) + ".")
    if moved:
        lines.append("- Values moved beyond their std:")
        lines += [f"  - {m}" for m in moved]
    pr = dict(zip(prev_ranks["entry"], prev_ranks["avg_rank"]))
    nr = dict(zip(agg.ranks["entry"], agg.ranks["avg_rank"]))
    if prev_opts.all_settings != agg.options.all_settings:
        # Entries are methods in one mode and method × setting in the other: not comparable.
        pr, nr = {}, {}
        lines.append("- Ranks are not compared: one version ranks methods, the other every setting.")
    rank_changes = [f"{e}: {pr[e]:.2f} → {nr[e]:.2f}" for e in nr
                    if e in pr and math.isfinite(nr[e]) and math.isfinite(pr[e]) and abs(nr[e] - pr[e]) > 1e-9]
    rank_changes += [f"{e}: — → {nr[e]:.2f}" for e in nr
                     if math.isfinite(nr[e]) and (e not in pr or not math.isfinite(pr[e]))]
    why = dict(zip(agg.ranks["entry"], agg.ranks["unranked"])) if "unranked" in agg.ranks.columns else {}
    rank_changes += [f"{e}: {pr[e]:.2f} → not ranked" + (f" ({why[e]})" if why.get(e) else "") for e in nr
                     if not math.isfinite(nr[e]) and e in pr and math.isfinite(pr[e])]
    if rank_changes:
        lines.append("- Average ranks changed: " + "; ".join(rank_changes) + ".")
    if lines[-1].startswith("Compared with"):  # nothing listed after it
        lines.append("- No change in rows, settings, run counts beyond their std, or ranks.")
    return "\n".join(lines) + "\n"


def write_changelog(study_dir: Path) -> None:
    parts = [f"# Changelog: {study_dir.name}", "",
             "Generated by `gmgbench leaderboard --publish` from each version's `changes.md`; newest first.", ""]
    for n in reversed(versions(study_dir)):
        f = study_dir / f"v{n}" / "changes.md"
        if f.is_file():
            parts += [f.read_text().rstrip("\n"), ""]
    atomic_write_text(study_dir / "CHANGELOG.md", "\n".join(parts))
