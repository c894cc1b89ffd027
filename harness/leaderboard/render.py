"""Aggregate → markdown (tabulate), readable on a code-hosting site.

The text is a pure function of the :class:`~gmgbench.harness.leaderboard.aggregate.Aggregate` and
the release record (version, spec hash, commit, command, figures), never of the clock or
the machine, so a release's markdown can be rebuilt byte for byte from its manifest.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from gmgbench.harness.leaderboard import health_flag as hl
from gmgbench.harness.leaderboard.aggregate import Aggregate
from gmgbench.harness.leaderboard.evidence import claims_section, stability_section
from gmgbench.harness.leaderboard.geometry_table import geometry_section
from gmgbench.harness.leaderboard.text import cell, claims_method, status_note
from gmgbench.harness.leaderboard.text import esc as _esc
from gmgbench.harness.leaderboard.text import fmt as _fmt
from gmgbench.harness.leaderboard.text import seeds as _seeds
from gmgbench.harness.leaderboard.text import table as _table

__all__ = ["render", "cell", "status_note", "selection_protocol", "claims_method"]


def _bold_best(values: list[float], direction: int) -> set[int]:
    arr = np.array(values, dtype=float)
    if direction == 0 or not np.isfinite(arr).any():
        return set()
    best = np.nanmax(direction * arr)
    return {i for i, v in enumerate(arr) if np.isfinite(v) and direction * v == best}


def _arrow(direction: int) -> str:
    return {1: " ↑", -1: " ↓", 0: ""}[direction]


def _rank_order(agg: Aggregate, entries: list[str]) -> list[str]:
    ranks = dict(zip(agg.ranks["entry"], agg.ranks["avg_rank"]))
    order = {e: i for i, e in enumerate(entries)}
    return sorted(entries, key=lambda e: (not math.isfinite(ranks.get(e, math.nan)), ranks.get(e, math.inf), order[e]))


def render(agg: Aggregate, release: dict[str, Any] | None = None, preview: str | None = None) -> str:
    """The leaderboard's markdown; ``release`` is the manifest of a published version, or None;
    ``preview`` says why a working board is not the study's own (``--only``, ``--set``, ``--results``)."""
    o, d = agg.options, agg.options.digits
    sel = o.selection
    board = agg.board
    out: list[str] = []
    title = f"# Leaderboard: {agg.study}" + (f" ({release['version']})" if release else "")
    out += [title, ""]
    if release is not None and release.get("code_dirty"):
        # Only manifests that record code_dirty (newer ones) show it, so older releases rebuild as published.
        out += [f"> **Published from uncommitted code.** The code was commit `{release['git_commit']}` plus local "
                "changes, so no commit reproduces these numbers exactly.", ""]
    if preview:
        out += [f"> **Preview, not the study's board**: built from {preview}. It is written to "
                f"`leaderboards/{agg.study}/preview.md`; the study's working board (`latest.md`) is left as it was.",
                ""]
    elif release is None:
        out += ["> **Not a release.** This file is rebuilt from the results store after runs finish and changes "
                "as they do. A published, immutable version, with figures and provenance, comes from "
                f"`gmgbench leaderboard <spec> --publish` (`leaderboards/{agg.study}/vN/`).", ""]
    if agg.description.strip():
        out += [" ".join(agg.description.split()), ""]

    out += _how_to_read(agg, "data" if release else "latest") if o.text_version >= 2 else _how_to_read_v1(agg, release)

    if o.claims:
        out += claims_section(agg)
        for f in (f for f in (release or {}).get("figures", []) if f.get("kind") == "claims"):
            out += [f"![{f['caption']}]({f['path']})", "", f"*{f['caption']}*", ""]
    if o.text_version >= 3 and o.held_out:
        out += stability_section(agg)

    # -- overall -----------------------------------------------------------------------
    entries = list(agg.ranks["entry"])
    ranked = _rank_order(agg, entries)
    rk = agg.ranks.set_index("entry")
    per_ds: dict[str, dict[str, Any]] = {ds: {} for ds in agg.datasets}
    for _, r in board.iterrows():
        per_ds[r["dataset"]][agg.entry(r["method"], r["setting"])] = r
    headers = ["Method", "Avg rank", "95 % interval"] + [f"{ds}{_arrow(o.direction(sel) or 1)}" for ds in agg.datasets]
    rows = []
    rules = o.text_version >= 3
    bold_rank = _bold_best([rk.loc[e, "avg_rank"] for e in ranked], -1)
    # Text 3: only an entry ranked on the dataset can be the best of its column.
    bold_ds = {ds: _bold_best([per_ds[ds][e][f"{sel}.mean"] if e in per_ds[ds]
                               and (not rules or math.isfinite(rk.loc[e, f"rank.{ds}"])) else math.nan for e in ranked],
                              o.direction(sel) or 1) for ds in agg.datasets}
    runs = agg.judged if rules else agg.runs  # text 3: health of the seeds behind the row
    show_health = hl.has_health(runs)
    for i, e in enumerate(ranked):
        avg = _fmt(rk.loc[e, "avg_rank"], 2)
        inert = show_health and any(hl.entry_health(runs, ds, r["method"], r["setting"])["state"] == "inert"
                                    for ds in agg.datasets for r in [per_ds[ds].get(e)] if r is not None)
        interval = ("—" if not math.isfinite(rk.loc[e, "rank_lo"])
                    else f"[{rk.loc[e, 'rank_lo']:.2f}, {rk.loc[e, 'rank_hi']:.2f}]")
        if rules and rk.loc[e, "unranked"]:
            avg, interval = f"not ranked: {_esc(rk.loc[e, 'unranked'])}", "—"
        elif rules and rk.loc[e, "interval"]:
            interval = rk.loc[e, "interval"]
        row = [_esc(e) + (f" **{hl.FLAG}**" if inert else ""), f"**{avg}**" if i in bold_rank else avg, interval]
        for ds in agg.datasets:
            r = per_ds[ds].get(e)
            if r is None:
                row.append("—")
                continue
            c = cell(r[f"{sel}.mean"], r[f"{sel}.std"], r[f"{sel}.n"], d)
            c = f"**{c}**" if i in bold_ds[ds] else c
            note = status_note(r)
            row.append(f"{c} · {note}" if note else c)
        rows.append(row)
    out += [f"## Overall: `{sel}`", "", _table(headers, rows, ["left", "right", "center"] + ["right"] * len(agg.datasets)), ""]
    if show_health and any(hl.FLAG in r[0] for r in rows):
        out += [hl.EXPLANATION, ""]

    # -- per dataset -----------------------------------------------------------------------
    figures = (release or {}).get("figures", [])
    notes = (release or {}).get("figure_notes", [])
    for ds in agg.datasets:
        out += _dataset_section(agg, ds, ranked, per_ds[ds], figures, notes)

    if release is not None:
        out += _provenance(agg, release)
    return "\n".join(out).rstrip("\n") + "\n"


def selection_protocol(agg: Aggregate) -> str:
    """The selection protocol in a few words (the header, the changelog, the index)."""
    o = agg.options if isinstance(agg, Aggregate) else agg
    if o.all_settings:
        return "no selection (every setting shown)"
    if o.held_out:
        return f"selected on held-out seeds ({_seeds(o.selection_seeds)}), judged on the others"
    return "selected and judged on the same seeds"


def _how_to_read(agg: Aggregate, data: str) -> list[str]:
    o, sel, runs = agg.options, agg.options.selection, agg.runs
    counts = {s: int((runs["status"] == s).sum()) for s in ("done", "failed", "missing")}
    best = "lowest" if o.direction(sel) < 0 else "highest"
    if o.all_settings:
        selection = ("none: every hyperparameter setting is its own row (`--all-settings`), on every seed "
                     f"({_seeds(agg.judged_seeds)}).")
    elif o.held_out:
        selection = (f"per method and dataset, the hyperparameter setting with the {best} mean `{sel}` over seeds "
                     f"{_seeds(agg.selection_seeds)} (ties: the first setting in the spec). **Protocol: selected on "
                     f"held-out seeds**: every value, rank and claim below comes from the other seeds "
                     f"({_seeds(agg.judged_seeds)}), which took no part in the selection. The selection means of "
                     f"every setting are the `selection_score` column of `{data}/aggregate.csv`.")
    else:
        selection = (f"per method and dataset, the hyperparameter setting with the {best} mean `{sel}` over seeds "
                     f"(ties: the first setting in the spec); every setting is in `{data}/aggregate.csv`. "
                     f"**Protocol: selected and judged on the same seeds** ({_seeds(agg.judged_seeds)}): the shown "
                     "values, ranks and claims come from the seeds that chose the setting, which favours methods "
                     "with more settings to choose from.")
        if int(agg.table["settings"].max()) <= 1:
            selection += " Here every method has a single setting, so nothing is chosen."
    out = [
        "## How to read this",
        "",
        f"- **Model selection**: {selection}",
        "- **Cells**: mean ± sample standard deviation (number of seeds with a value) of the shown setting over "
        "the judged seeds; **bold** is the best mean of its column (↑ higher is better, ↓ lower is better).",
        _rank_line(agg),
        f"- **Runs**: the spec expects {len(runs)} runs: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['missing']} missing. A cell's note counts the failed and missing runs of the shown setting, "
        "on any seed.",
    ]
    if o.text_version >= 3:
        out.append(_ranking_rules(agg))
    if o.text_version >= 4 and runs["setting"].astype(str).str.contains("gmg.", regex=False).any():
        out.append(_gmg_estimator_line(runs))
    if o.claims:
        out.append(f"- **Claims**: {claims_method(o)} (see Claims).")
    if runs["method"].str.endswith(" (external)").any():
        out.append("- **External**: entries marked *(external)* were trained elsewhere and evaluated here from their "
                   "disentanglement_lib TF-Hub module (`gmgbench import-dlib`, docs/dlib.md), with the same metrics; "
                   "their setting is the module's SHA-256, and they have one seed.")
    if hl.has_health(runs):
        out.append("- **Health**: whether each entry's regulariser acted: the median over its runs of the smallest "
                   "term's median share of the gradient on the parameters it shares with the base objective. "
                   f"**{hl.FLAG}** marks an entry most of whose runs had a share below 1 % at more than half of the "
                   "measured steps; `health unknown`: results from before health was recorded.")
    return out + [""]


def _gmg_estimator_line(runs) -> str:
    """Which quantity the GMG entries' training term is (text 4): the estimator their settings
    name, else the default ``plain``, which is not the Gromov-Monge gap."""
    named = sorted({part.split("=", 1)[1] for s in runs["setting"].astype(str) for part in s.split(",")
                    if part.startswith("gmg.estimator=")})
    other = f" (entries whose setting names `gmg.estimator` use that one: {', '.join(named)})" if named else ""
    return ("- **GMG's training term**: `plain`, the paper's entropic estimate DST − GW_ε, not the Gromov-Monge "
            f"gap itself{other}. It is below 0 in most training steps and its gradient ∇DST − ∇GW_ε is the "
            "method (docs/gw.md); the held-out geometry table, where shown, measures the gap.")


def _rank_line(agg: Aggregate) -> str:
    o, sel = agg.options, agg.options.selection
    if o.text_version < 3:
        return (f"- **Rank**: per dataset by mean `{sel}` (1 = best, ties share the average rank), averaged over the "
                f"datasets where the entry has a value; the interval is the 2.5–97.5 % range of the average rank "
                f"over {o.bootstrap} bootstrap resamples of the judged seeds (seed {o.bootstrap_seed}, selection "
                "held fixed).")
    return (f"- **Rank**: per dataset by mean `{sel}` among the ranked entries (1 = best, ties share the average "
            "rank), averaged over the datasets; the interval is the 2.5–97.5 % range of the average rank over "
            f"{o.bootstrap} bootstrap resamples of the judged seeds (bootstrap seed {o.bootstrap_seed}, a seed of "
            "the resampling, not of training; selection held fixed).")


def _ranking_rules(agg: Aggregate) -> str:
    from gmgbench.harness.leaderboard.options import MIN_RANK_SEEDS

    o = agg.options
    return (f"- **Ranking rules**: an entry is shown but **not ranked** (no rank, never bold) when its regulariser "
            f"is inert (it measures the base model), when it lost judged seeds to failures (the survivors are not "
            f"the seeds the others are judged on), or when it has fewer than {o.min_seeds} judged seeds with a value "
            f"(`leaderboard.min_seeds`); its rank cell says which. A rank interval needs {MIN_RANK_SEEDS} judged "
            "seeds on every dataset, else it reads \"too few seeds\". Bold marks the best of the ranked entries.")


def _how_to_read_v1(agg: Aggregate, release) -> list[str]:
    """The wording of releases published before boards stated their protocol (rebuilt as published)."""
    o, sel, runs = agg.options, agg.options.selection, agg.runs
    counts = {s: int((runs["status"] == s).sum()) for s in ("done", "failed", "missing")}
    out: list[str] = []
    best = "lowest" if o.direction(sel) < 0 else "highest"
    if o.all_settings:
        selection = "none: every hyperparameter setting is its own row (`--all-settings`)."
    else:
        selection = (f"per method and dataset, the hyperparameter setting with the {best} mean `{sel}` over "
                     f"seeds (ties: the first setting in the spec); every setting is in "
                     f"`{'data' if release else 'latest'}/aggregate.csv`.")
    out += [
        "## How to read this",
        "",
        f"- **Model selection**: {selection}",
        "- **Cells**: mean ± sample standard deviation (number of seeds with a value) of the shown setting; "
        "**bold** is the best mean of its column (↑ higher is better, ↓ lower is better).",
        f"- **Rank**: per dataset by mean `{sel}` (1 = best, ties share the average rank), averaged over the "
        f"datasets where the entry has a value; the interval is the 2.5–97.5 % range of the average rank over "
        f"{o.bootstrap} bootstrap resamples of the seeds (seed {o.bootstrap_seed}, selection held fixed).",
        f"- **Runs**: the spec expects {len(runs)} runs: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['missing']} missing. A cell's note counts the failed and missing runs behind it.",
        "",
    ]

    return out


def _dataset_section(agg: Aggregate, ds: str, ranked: list[str], rows_by_entry: dict, figures: list[dict],
                     notes: list[str]) -> list[str]:
    o, d = agg.options, agg.options.digits
    entries = [e for e in ranked if e in rows_by_entry]
    ref_cols = [c for c in agg.metrics if f"{c}.reference" in agg.table.columns
                and any(math.isfinite(rows_by_entry[e][f"{c}.reference"]) for e in entries)]
    headers = ["Method"] + ([] if o.all_settings else ["Setting"]) + ["Rank"]
    headers += [f"{c}{_arrow(o.direction(c))}" for c in agg.metrics] + ["Runs"]
    rules = o.text_version >= 3
    health_runs = agg.judged if rules else agg.runs  # text 3: the seeds behind the row
    show_health = hl.has_health(health_runs)
    if show_health:
        headers += ["Health"]
    for c in ref_cols:
        headers += [f"Reference {c}", f"Δ {c}"]
    rank_col = f"rank.{ds}"
    rk = agg.ranks.set_index("entry")
    # Text 3: an entry not ranked here is never the bold best of a column.
    boldable = [not rules or math.isfinite(rk.loc[e, rank_col]) for e in entries]
    bold = {c: _bold_best([rows_by_entry[e][f"{c}.mean"] if ok else math.nan for e, ok in zip(entries, boldable)],
                          o.direction(c)) for c in agg.metrics}
    rows = []
    for i, e in enumerate(entries):
        r = rows_by_entry[e]
        h = hl.entry_health(health_runs, ds, r["method"], r["setting"]) if show_health else None
        row = [_esc(e) + (f" **{hl.FLAG}**" if h and h["state"] == "inert" else "")]
        if not o.all_settings:
            setting = r["setting"] or "(none)"
            row.append(_esc(setting) + (f" (best of {int(r['settings'])})" if int(r["settings"]) > 1 else ""))
        if rules and not math.isfinite(rk.loc[e, rank_col]):
            from gmgbench.harness.leaderboard.aggregate import unranked_reasons

            why = "; ".join(unranked_reasons(agg, ds, r["method"], r["setting"]))
            row.append(f"not ranked: {_esc(why)}" if why else "—")
        else:
            row.append(_fmt(rk.loc[e, rank_col], 1))
        for c in agg.metrics:
            txt = cell(r[f"{c}.mean"], r[f"{c}.std"], r[f"{c}.n"], d)
            row.append(f"**{txt}**" if i in bold[c] else txt)
        note = status_note(r)
        row.append(f"{int(r['done'])}/{int(r['expected'])}" + (f" ({note})" if note else ""))
        if h is not None:
            row.append(hl.cell(h))
        for c in ref_cols:
            ref, delta = r[f"{c}.reference"], r[f"{c}.delta"]
            row += [_fmt(ref, d), "—" if not math.isfinite(delta) else f"{delta:+.{d}f}"]
        rows.append(row)
    align = ["left"] + ([] if o.all_settings else ["left"]) + ["right"] * (1 + len(agg.metrics)) + ["center"]
    align += ["left"] if show_health else []
    align += ["right"] * (2 * len(ref_cols))
    out = [f"## {ds}", "", _table(headers, rows, align), ""]
    if show_health and any(hl.FLAG in r[0] for r in rows):
        out += [hl.EXPLANATION, ""]
    if rules:
        out += geometry_section(agg.judged, ds, [(e, rows_by_entry[e]["method"], rows_by_entry[e]["setting"])
                                                 for e in entries], d)
    sources = [(m, ref.source) for (rds, m), ref in agg.references.items() if rds == ds and ref.source]
    if sources:
        out += ["Reference values: " + "; ".join(f"{_esc(m)}: {_esc(s)}" for m, s in sources)
                + ". Δ is the shown mean minus the reference.", ""]

    figs = [f for f in figures if f.get("dataset") == ds]
    for kind in ("selection", "curves", "health"):
        for f in (f for f in figs if f["kind"] == kind):
            out += [f"![{f['caption']}]({f['path']})", "", f"*{f['caption']}*", ""]
    models = [f for f in figs if f["kind"] in ("traversal", "reconstruction")]
    if models:
        by_method: dict[str, dict[str, dict]] = {}
        for f in models:
            by_method.setdefault(f["entry"], {})[f["kind"]] = f
        rows = []
        for e in [e for e in entries if e in by_method] + [e for e in by_method if e not in entries]:
            fs = by_method[e]
            any_f = next(iter(fs.values()))
            rows.append([_esc(e), f"seed {any_f['seed']}, run `{any_f['run_id']}`"]
                        + [f'<img src="{fs[k]["path"]}" width="360" alt="{fs[k]["caption"]}">' if k in fs else "—"
                           for k in ("traversal", "reconstruction")])
        out += [f"**Selected models on {ds}** (the seed whose `{o.selection}` is nearest the median of the shown "
                "setting; traversals: each row moves one latent of one encoded image from −2.5 to 2.5 with the "
                "others fixed, rows sorted by the latent's mean KL; reconstructions: inputs above, outputs below)",
                "", _table(["Method", "Model", "Latent traversals", "Reconstructions"], rows,
                           ["left", "left", "center", "center"]), ""]
    for n in notes:
        if n.startswith(f"{ds}:"):
            out += [f"- {_esc(n)}"]
    if any(n.startswith(f"{ds}:") for n in notes):
        out += [""]
    return out


def _provenance(agg: Aggregate, release: dict[str, Any]) -> list[str]:
    pk = release.get("packages", {})
    results = release.get("results", [])
    commits = sorted({r["git_commit"] for r in results if r.get("git_commit")})
    return [
        "## Provenance",
        "",
        f"- Built with `{release['build_command']}` at code commit `{release['git_commit']}`.",
        f"- Study spec: `{release.get('spec_path') or '(not from a file)'}`, sha256 `{release['spec_sha256'][:16]}` "
        "(the full spec is in `manifest.json`).",
        f"- Results: {len(results)} result files, each listed with its SHA-256 in `manifest.json`; runs trained at "
        f"code commit{'s' if len(commits) != 1 else ''} " + (", ".join(f"`{c[:12]}`" for c in commits) or "—") + ".",
        "- Data: `data/runs.csv` (one row per expected run), `data/aggregate.csv` (one row per setting), "
        "`data/ranks.csv` (also as parquet); `dlib/` holds disentanglement_lib-style `evaluation.json` files.",
        "- Packages: " + ", ".join(f"{k} {v}" for k, v in sorted(pk.items())) + ".",
        f"- Rebuild and check this file: `gmgbench leaderboard --rebuild <this folder>` "
        f"(e.g. `leaderboards/{agg.study}/{release['version']}`).",
        "",
    ]
