"""Aggregate → markdown (tabulate), readable on a code-hosting site.

The text is a pure function of the :class:`~harness.leaderboard.aggregate.Aggregate` and
the release record (version, spec hash, commit, command, figures), never of the clock or
the machine, so a release's markdown can be rebuilt byte for byte from its manifest.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from tabulate import tabulate

from harness.leaderboard import health as hl
from harness.leaderboard.aggregate import Aggregate
from harness.leaderboard.options import MIN_PAIRS

__all__ = ["render", "cell", "status_note"]


def _fmt(x: float, digits: int) -> str:
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


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|")


def _bold_best(values: list[float], direction: int) -> set[int]:
    arr = np.array(values, dtype=float)
    if direction == 0 or not np.isfinite(arr).any():
        return set()
    best = np.nanmax(direction * arr)
    return {i for i, v in enumerate(arr) if np.isfinite(v) and direction * v == best}


def _table(headers: list[str], rows: list[list[str]], align: list[str]) -> str:
    return tabulate(rows, headers=headers, tablefmt="pipe", disable_numparse=True, colalign=align)


def _arrow(direction: int) -> str:
    return {1: " ↑", -1: " ↓", 0: ""}[direction]


def _rank_order(agg: Aggregate, entries: list[str]) -> list[str]:
    ranks = dict(zip(agg.ranks["entry"], agg.ranks["avg_rank"]))
    order = {e: i for i, e in enumerate(entries)}
    return sorted(entries, key=lambda e: (not math.isfinite(ranks.get(e, math.nan)), ranks.get(e, math.inf), order[e]))


def render(agg: Aggregate, release: dict[str, Any] | None = None) -> str:
    """The leaderboard's markdown; ``release`` is the manifest of a published version, or None."""
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
    if release is None:
        out += ["> **Not a release.** This file is rebuilt from the results store after runs finish and changes "
                "as they do. A published, immutable version, with figures and provenance, comes from "
                f"`gmgbench leaderboard <spec> --publish` (`leaderboards/{agg.study}/vN/`).", ""]
    if agg.description.strip():
        out += [" ".join(agg.description.split()), ""]

    out += _how_to_read(agg, "data" if release else "latest") if o.text_version >= 2 else _how_to_read_v1(agg, release)

    if o.claims:
        out += _claims_section(agg)

    # -- overall -----------------------------------------------------------------------
    entries = list(agg.ranks["entry"])
    ranked = _rank_order(agg, entries)
    rk = agg.ranks.set_index("entry")
    per_ds: dict[str, dict[str, Any]] = {ds: {} for ds in agg.datasets}
    for _, r in board.iterrows():
        per_ds[r["dataset"]][agg.entry(r["method"], r["setting"])] = r
    headers = ["Method", "Avg rank", "95 % interval"] + [f"{ds}{_arrow(o.direction(sel) or 1)}" for ds in agg.datasets]
    rows = []
    bold_rank = _bold_best([rk.loc[e, "avg_rank"] for e in ranked], -1)
    bold_ds = {ds: _bold_best([per_ds[ds][e][f"{sel}.mean"] if e in per_ds[ds] else math.nan for e in ranked],
                              o.direction(sel) or 1) for ds in agg.datasets}
    runs = agg.runs
    show_health = hl.has_health(runs)
    for i, e in enumerate(ranked):
        avg = _fmt(rk.loc[e, "avg_rank"], 2)
        inert = show_health and any(hl.entry_health(runs, ds, r["method"], r["setting"])["state"] == "inert"
                                    for ds in agg.datasets for r in [per_ds[ds].get(e)] if r is not None)
        row = [_esc(e) + (f" **{hl.FLAG}**" if inert else ""), f"**{avg}**" if i in bold_rank else avg,
               "—" if not math.isfinite(rk.loc[e, "rank_lo"]) else f"[{rk.loc[e, 'rank_lo']:.2f}, {rk.loc[e, 'rank_hi']:.2f}]"]
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


def _seeds(seeds) -> str:
    return ", ".join(str(int(s)) for s in seeds)


def selection_protocol(agg: Aggregate) -> str:
    """The selection protocol in a few words (the header, the changelog, the index)."""
    o = agg.options if isinstance(agg, Aggregate) else agg
    if o.all_settings:
        return "no selection (every setting shown)"
    if o.held_out:
        return f"selected on held-out seeds ({_seeds(o.selection_seeds)}), judged on the others"
    return "selected and judged on the same seeds"


def claims_method(o) -> str:
    """The claims test and correction in a few words."""
    test = ("paired t-interval on per-seed differences" if o.claims_test == "paired"
            else "Welch's t-interval (unpaired)")
    return test + (", Holm-corrected across the board's comparisons" if o.claims_correction == "holm"
                   else ", not corrected for multiple comparisons")


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
        f"- **Rank**: per dataset by mean `{sel}` (1 = best, ties share the average rank), averaged over the "
        f"datasets where the entry has a value; the interval is the 2.5–97.5 % range of the average rank over "
        f"{o.bootstrap} bootstrap resamples of the judged seeds (seed {o.bootstrap_seed}, selection held fixed).",
        f"- **Runs**: the spec expects {len(runs)} runs: {counts['done']} done, {counts['failed']} failed, "
        f"{counts['missing']} missing. A cell's note counts the failed and missing runs of the shown setting, "
        "on any seed.",
    ]
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
    show_health = hl.has_health(agg.runs)
    if show_health:
        headers += ["Health"]
    for c in ref_cols:
        headers += [f"Reference {c}", f"Δ {c}"]
    bold = {c: _bold_best([rows_by_entry[e][f"{c}.mean"] for e in entries], o.direction(c)) for c in agg.metrics}
    rank_col = f"rank.{ds}"
    rk = agg.ranks.set_index("entry")
    rows = []
    for i, e in enumerate(entries):
        r = rows_by_entry[e]
        h = hl.entry_health(agg.runs, ds, r["method"], r["setting"]) if show_health else None
        row = [_esc(e) + (f" **{hl.FLAG}**" if h and h["state"] == "inert" else "")]
        if not o.all_settings:
            setting = r["setting"] or "(none)"
            row.append(_esc(setting) + (f" (best of {int(r['settings'])})" if int(r["settings"]) > 1 else ""))
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


def _claims_section(agg: Aggregate) -> list[str]:
    from harness.leaderboard.claims import ALPHA, judge

    o = agg.options
    verdicts = judge(agg)
    if o.text_version < 2:
        return _claims_section_v1(agg, verdicts)
    paired = o.claims_test == "paired"
    rows = []
    for v in verdicts:
        if math.isfinite(v.lo):
            diff = f"{_fmt(v.delta, o.digits)} [{_fmt(v.lo, o.digits)}, {_fmt(v.hi, o.digits)}]"
        else:
            diff = _fmt(v.delta, o.digits)
        if paired:
            n = f"{v.n_pairs}" + (f" ({v.dropped} unpaired dropped)" if v.dropped else "")
        else:
            n = f"{v.n_better} / {v.n_than}"
        p = "—" if not math.isfinite(v.p_adj) else "< 0.001" if v.p_adj < 0.001 else f"{v.p_adj:.3f}"
        rows.append([_esc(v.claim.claim), v.dataset, f"{_esc(v.claim.better)} vs {_esc(v.claim.than)}", diff, n, p,
                     f"**{v.verdict}**" if v.verdict in ("supported", "contradicted") else v.verdict])
    m = sum(math.isfinite(v.p) for v in verdicts)
    holm = o.claims_correction == "holm"
    level = int(round(100 * ALPHA))
    if paired:
        test = ("Runs of one seed share initialisation and data order, so the test is **paired**: Δ is the mean "
                "of the per-seed differences, with the paired 95 % t-interval (n − 1 degrees of freedom) over the "
                "seeds both methods have; a seed that one side lacks is dropped from the pairing (column Pairs).")
    else:
        test = ("The test is **Welch's** (unpaired): Δ is the difference of the two means, with Welch's 95 % "
                "t-interval over each method's seeds.")
    few = "insufficient pairs" if paired else "insufficient seeds"
    unit = "pairs" if paired else "seeds on each side"
    correction = (f"**Holm-corrected** across the {m} comparison{'s' if m != 1 else ''} of this board with a "
                  f"p-value (the interval is not corrected)" if holm
                  else f"not corrected for the {m} comparison{'s' if m != 1 else ''} of this board")
    headers = ["Claim", "Dataset", "Compared", f"Δ `{o.selection}` [95 % interval]", "Pairs" if paired else "Seeds",
               "p (Holm)" if holm else "p", "Verdict"]
    return [
        "## Claims",
        "",
        f"Each claim compares the two methods' shown settings by `{o.selection}` on the judged seeds "
        f"({_seeds(agg.judged_seeds)}). {test} p is the two-sided p-value of Δ = 0, {correction}. "
        f"**supported** / **contradicted**: p < {ALPHA:g} with Δ above / below 0 (the whole interval then lies on "
        f"that side); otherwise inconclusive, as is a set of identical differences (a zero-width interval is no "
        f"evidence by itself); fewer than {MIN_PAIRS} {unit}: {few}. "
        + (f"The correction keeps the chance that any verdict of the board is a false supported or contradicted "
           f"at {level} % or less." if holm else
           f"Each verdict on its own has up to a {level} % chance of being a false supported or contradicted; "
           "among many claims some are expected."),
        "",
        _table(headers, rows, ["left", "left", "left", "right", "center", "right", "center"]),
        "",
    ]


def _claims_section_v1(agg: Aggregate, verdicts) -> list[str]:
    o = agg.options
    rows = []
    for v in verdicts:
        if v.verdict == "no data":
            diff = "—"
        else:
            diff = f"{_fmt(v.delta, o.digits)} [{_fmt(v.lo, o.digits)}, {_fmt(v.hi, o.digits)}]"
        rows.append([_esc(v.claim.claim), v.dataset, f"{_esc(v.claim.better)} vs {_esc(v.claim.than)}", diff,
                     f"{v.n_better} / {v.n_than}", f"**{v.verdict}**" if v.verdict in ("supported", "contradicted")
                     else v.verdict])
    headers = ["Claim", "Dataset", "Compared", f"Δ `{o.selection}` [95 % interval]", "Seeds", "Verdict"]
    return [
        "## Claims",
        "",
        f"Each claim compares the two methods' shown settings by mean `{o.selection}`; the interval is Welch's "
        "95 % t-interval over the two methods' seeds. **supported** / **contradicted**: the whole interval lies on "
        "one side of 0; otherwise inconclusive, and always inconclusive with a single seed.",
        "",
        _table(headers, rows, ["left", "left", "left", "right", "center", "center"]),
        "",
    ]
