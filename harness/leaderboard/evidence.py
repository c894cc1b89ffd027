"""The board's evidence sections: the claims with their power (what the seeds could detect,
what a decisive study would need) and the selection's stability on the judged seeds."""
from __future__ import annotations

import math

import numpy as np

from gmgbench.harness.leaderboard.aggregate import Aggregate
from gmgbench.harness.leaderboard.claims import ALPHA, judge
from gmgbench.harness.leaderboard.options import MIN_PAIRS
from gmgbench.harness.leaderboard.power import MAX_PAIRS, critical_t
from gmgbench.harness.leaderboard.text import esc as _esc
from gmgbench.harness.leaderboard.text import fmt as _fmt
from gmgbench.harness.leaderboard.text import seeds as _seeds
from gmgbench.harness.leaderboard.text import table as _table

__all__ = ["claims_section", "stability_section"]


def claims_section(agg: Aggregate) -> list[str]:
    o = agg.options
    verdicts = judge(agg)
    if o.text_version < 2:
        return _claims_section_v1(agg, verdicts)
    paired = o.claims_test == "paired"
    power = paired and o.text_version >= 3
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
        if power:
            need = v.pairs_needed
            rows[-1][5:5] = [_fmt(v.sd, o.digits), _fmt(v.mde, o.digits),
                             "—" if not math.isfinite(v.delta) or not math.isfinite(v.sd) or v.delta == 0
                             else str(need) if need is not None else f"> {MAX_PAIRS}"]
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
    align = ["left", "left", "left", "right", "center", "right", "center"]
    if power:
        headers[5:5] = ["sd of differences", "MDE (80 %)", "Pairs for 80 % at observed Δ"]
        align[5:5] = ["right", "right", "right"]
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
        _table(headers, rows, align),
        "",
    ] + (_power_text(agg, verdicts, m) if power else [])


def _power_text(agg: Aggregate, verdicts, m: int) -> list[str]:
    """What the claims could detect, and what a decisive study would need (paired, text 3)."""
    o = agg.options
    family = max(m, 1) if o.claims_correction == "holm" else 1
    level = f"α/{family} = {ALPHA / family:.4g}" if family > 1 else f"α = {ALPHA:g}"
    pairs = sorted({v.n_pairs for v in verdicts if v.n_pairs >= MIN_PAIRS})
    first = "; ".join(f"{n} pairs: |t{_sub(n - 1)}| ≥ {critical_t(n, family, ALPHA):.2f}, i.e. |Δ|/sd ≥ "
                      f"{critical_t(n, family, ALPHA) / math.sqrt(n):.2f}" for n in pairs)
    needs = [v.pairs_needed for v in verdicts if math.isfinite(v.sd) and math.isfinite(v.delta) and v.delta != 0]
    design = ""
    if needs:
        known = sorted(x for x in needs if x is not None)
        more = len(needs) - len(known)
        beyond = f"more than {MAX_PAIRS}"
        if known:
            span = f"{known[0]}–{known[-1]}" if known[0] != known[-1] else str(known[0])
            span += f" ({beyond} for {more} claim{'s' if more != 1 else ''})" if more else ""
        else:
            span = f"{beyond} for every claim"
        design = (f" **Design**: at the observed sd, a decisive verdict (80 % power) at each claim's observed |Δ| "
                  f"would take {span} judged seeds per method; `gmgbench leaderboard --power <release>` plans the "
                  "seeds for any effect from a release's sd before training.")
    return [f"**What these seeds could detect.** A claim can only be called when it passes Holm's first step, "
            f"{level} two-sided ({first or 'no comparison has enough pairs'}). **MDE (80 %)** is the true mean "
            "difference the paired t-test would call with 80 % probability at that level, given the claim's pairs and "
            "the observed sd of its per-seed differences (noncentral t). An inconclusive verdict does not show that "
            "there is no difference, nor that it is smaller than the MDE: a difference that large would have been "
            "called with 80 % probability, a smaller one could easily go unseen. Each figure assumes the sd stays as "
            f"observed, itself uncertain with few pairs.{design}", ""]


def _sub(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _varying(setting: str, candidates) -> str:
    """The ``key=value`` parts of ``setting`` that not every candidate shares (settings are comma-joined)."""
    shared = set.intersection(*(set(str(c).split(",")) for c in candidates))
    return ",".join(p for p in setting.split(",") if p not in shared) or setting


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def stability_section(agg: Aggregate) -> list[str]:
    """Whether the selection seeds chose what the judged seeds would have (text 3, held-out selection)."""
    o, d, sel = agg.options, agg.options.digits, agg.options.selection
    sign = o.direction(sel) or 1
    rows, agree, cells = [], 0, 0
    for (ds, method), g in agg.table.groupby(["dataset", "method"], sort=False):
        if len(g) < 2:
            continue
        chosen = g[g["selected"]].iloc[0]
        judged = sign * g[f"{sel}.mean"].to_numpy(float)
        if not math.isfinite(chosen[f"{sel}.mean"]) or not np.isfinite(judged).any():
            continue
        cells += 1
        best = g.iloc[int(np.nanargmax(judged))]
        rank = 1 + int(np.sum(judged > sign * chosen[f"{sel}.mean"]))
        same = best["setting"] == chosen["setting"]
        agree += same
        cands = list(g["setting"])
        rows.append([ds, _esc(method), _esc(_varying(chosen["setting"], cands)),
                     _fmt(chosen["selection_score"], d), _fmt(chosen[f"{sel}.mean"], d), f"{_ordinal(rank)} of {len(g)}",
                     "yes" if same else f"no: {_esc(_varying(best['setting'], cands))} "
                                        f"({_fmt(best[f'{sel}.mean'], d)})"])
    if not rows:
        return []
    headers = ["Dataset", "Method", "Selected setting", f"`{sel}` on selection seeds", "on judged seeds",
               "Its rank on judged seeds", "Judged seeds agree?"]
    return ["## Selection stability", "",
            f"For each method with more than one setting: the setting the selection seeds ({_seeds(agg.selection_seeds)}) "
            f"chose (only the parameters its candidates vary), its mean `{sel}` on those seeds "
            f"and on the judged seeds ({_seeds(agg.judged_seeds)}), its rank among the candidates on the judged seeds, "
            f"and whether the judged seeds would have chosen it (else their choice and its mean). They agree in "
            f"**{agree} of {cells}**. A choice the judged seeds do not repeat was made on noise at this many seeds: "
            "the board still shows it, since choosing on the judged seeds would bias the shown values upwards.", "",
            _table(headers, rows, ["left", "left", "left", "right", "right", "center", "left"]), ""]


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
