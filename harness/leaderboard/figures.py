"""Release figures (matplotlib, PNG): seed spread, training curves, regulariser health,
traversals, reconstructions.

Each function writes one PNG and returns its record ``{path, kind, dataset, caption, ...}``
for the manifest; the markdown links the figures listed there. Figures use matplotlib's
object API (no pyplot state), so building them never touches a user's backend.
"""
from __future__ import annotations

import errno
import hashlib
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from gmgbench.harness.leaderboard.aggregate import Aggregate

__all__ = ["make_figures", "selection_chart", "training_curves", "health_figure", "model_figures", "slug", "split_loss",
           "short_label"]

_DPI = 100


def slug(text: str) -> str:
    """A file-name part for ``text``. Text that had to be changed gets a short hash of the
    original, so labels that differ only in replaced characters (``α-VAE``, ``β-VAE``) never
    share a file (a row would show another method's model)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"
    if safe == text:
        return safe
    return f"{safe}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:6]}"


def _figure(w: float, h: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No software/date metadata: the same figure gives the same bytes.
    fig.savefig(path, format="png", dpi=_DPI, metadata={"Software": None}, bbox_inches="tight")


def _board_entries(agg: Aggregate, ds: str) -> list[tuple[str, Any]]:
    """The shown rows of ``ds``, best mean of the selection metric first (entries without one last)."""
    board = agg.board
    rows = board[board["dataset"] == ds]
    sel = agg.options.selection
    sign = agg.options.direction(sel) or 1
    items = [(agg.entry(r["method"], r["setting"]), r) for _, r in rows.iterrows()]

    def key(it):
        m = it[1][f"{sel}.mean"]
        return (not math.isfinite(m), -sign * m if math.isfinite(m) else 0.0)

    return sorted(items, key=key)


def short_label(agg: Aggregate, entry: str, row) -> str:
    """A figure label: the method, plus (with every setting shown) only the parameters that vary
    among the method's settings; full settings are in the tables."""
    if not agg.options.all_settings:
        return str(row["method"])
    cands = agg.table.loc[(agg.table["dataset"] == row["dataset"]) & (agg.table["method"] == row["method"]), "setting"]
    shared = set.intersection(*(set(str(c).split(",")) for c in cands)) if len(cands) else set()
    # "dst.weight=300.0" -> "weight=300.0": the term's prefix goes, the value stays whole.
    varying = ",".join(f"{k.split('.')[-1]}={v}" for k, _, v in
                       (p.partition("=") for p in str(row["setting"]).split(",") if p not in shared))
    return f"{row['method']} [{varying}]" if varying else str(row["method"])


def _seed_values(agg: Aggregate, ds: str, row, col: str, seeds=None) -> tuple[np.ndarray, np.ndarray]:
    runs = agg.runs
    seeds = agg.judged_seeds if seeds is None else seeds  # default: the seeds behind the shown mean ± std
    m = (runs["dataset"] == ds) & (runs["method"] == row["method"]) & (runs["setting"] == row["setting"]) \
        & (runs["status"] == "done") & runs["seed"].isin(seeds)
    sub = runs.loc[m, ["seed", col]].dropna()
    return sub["seed"].to_numpy(), sub[col].to_numpy(float)


def _seeds_text(seeds) -> str:
    return ", ".join(str(int(s)) for s in seeds)


def selection_chart(agg: Aggregate, ds: str, out_dir: Path) -> dict[str, Any]:
    """Per method, best mean on top: every judged seed's value (dots), mean ± std (bar),
    reference (diamond); with held-out selection, the selection seeds' values apart (hollow).

    Horizontal, so method labels stay readable and many methods only make it taller; the
    legend sits below the axes, never over the points.
    """
    sel = agg.options.selection
    items = _board_entries(agg, ds)
    n = max(len(items), 1)
    labels = [short_label(agg, e, r) for e, r in items]
    longest = max((len(x) for x in labels), default=8)
    fig = _figure(5.0 + 0.07 * min(longest, 60), 1.9 + 0.42 * n)
    ax = fig.add_subplot(1, 1, 1)
    for i, (entry, row) in enumerate(items):
        y = n - 1 - i
        _, vals = _seed_values(agg, ds, row, sel)
        if len(vals):
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.scatter(vals, y + jitter, s=20, color="0.35", zorder=3,
                       label=f"judged seed ({_seeds_text(agg.judged_seeds)})")
            std = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            ax.errorbar([vals.mean()], [y], xerr=[std], fmt="s", color="C0", ms=7, capsize=5, lw=2, zorder=4,
                        label="mean ± std (judged seeds)")
        if agg.options.held_out:
            _, chose = _seed_values(agg, ds, row, sel, agg.selection_seeds)
            if len(chose):
                ax.scatter(chose, np.full(len(chose), y + 0.3), s=24, facecolors="none", edgecolors="C1", zorder=3,
                           label=f"selection seed ({_seeds_text(agg.selection_seeds)}; not judged)")
        ref = row.get(f"{sel}.reference", math.nan)
        if isinstance(ref, float) and math.isfinite(ref):
            ax.scatter([ref], [y - 0.3], marker="D", color="C3", zorder=4, label="reference")
    ax.set_yticks(range(n))
    ax.set_yticklabels(list(reversed(labels)) or [""], fontsize=8)
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlabel(f"{sel} ({'lower' if agg.options.direction(sel) < 0 else 'higher'} is better)")
    ax.set_title(f"{ds}: {sel} of the shown setting, per seed", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles))
    if uniq:
        fig.legend(uniq.values(), uniq.keys(), fontsize=7, loc="outside lower center", ncols=2)
    path = out_dir / f"{slug(ds)}-selection.png"
    _save(fig, path)
    held = (f"; hollow: the selection seeds ({_seeds_text(agg.selection_seeds)}), which chose the setting and are "
            "not judged" if agg.options.held_out else "")
    return {"path": f"figures/{path.name}", "kind": "selection", "dataset": ds,
            "caption": f"{ds}: {sel} per method, best mean on top (dots: the judged seeds "
                       f"{_seeds_text(agg.judged_seeds)}; square and bar: their mean ± std{held})"}


def split_loss(curve: list[dict], weights: dict[str, float | None]) -> list[dict]:
    """Each logged point plus ``base loss`` (the objective alone) and ``λ·R`` (the weighted
    regularisers, summed): the logged ``loss`` includes λ·R, whose scale depends on λ, so
    totals of different methods are not comparable while base losses are."""
    out = []
    for p in curve:
        q = dict(p)
        terms = [w * p[name] for name, w in weights.items()
                 if isinstance(w, (int, float)) and isinstance(p.get(name), (int, float))]
        if "loss" in p and len(terms) == len(weights):
            q["base loss"] = p["loss"] - sum(terms)
            if weights:
                q["λ·R"] = sum(terms)
        out.append(q)
    return out


def training_curves(agg: Aggregate, ds: str, curves: dict[str, list[dict]], out_dir: Path) -> dict[str, Any] | None:
    """Base loss, λ·R, recon and KL against steps over the judged seeds: mean (line) and range (band)."""
    items = _board_entries(agg, ds)
    runs = agg.judged  # the seeds of the tables
    series: dict[str, list[list[dict]]] = {}
    for entry, row in items:
        ids = runs.loc[(runs["dataset"] == ds) & (runs["method"] == row["method"]) & (runs["setting"] == row["setting"])
                       & (runs["status"] == "done"), "run_id"]
        cs = [curves[i] for i in ids if curves.get(i)]
        if cs:
            series[short_label(agg, entry, row)] = cs
    if not series:
        return None
    keys = [k for k in ("base loss", "λ·R", "recon", "kl") if any(k in p for cs in series.values() for c in cs for p in c)]
    keys = keys or ["loss"]
    ncols = min(len(keys), 2)  # two panels a row stay legible when the page scales the image down
    nrows = math.ceil(len(keys) / ncols)
    fig = _figure(4.6 * ncols, 3.1 * nrows + 0.3 + 0.18 * len(series))
    for j, key in enumerate(keys):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        values_seen: list[float] = []
        for i, (entry, cs) in enumerate(series.items()):
            steps = sorted({p["step"] for c in cs for p in c if key in p})
            if not steps:
                continue
            mat = np.full((len(cs), len(steps)), np.nan)
            at = {s: k for k, s in enumerate(steps)}
            for r, c in enumerate(cs):
                for p in c:
                    if key in p:
                        mat[r, at[p["step"]]] = p[key]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a step no seed logged: NaN is the answer
                mean, lo, hi = np.nanmean(mat, 0), np.nanmin(mat, 0), np.nanmax(mat, 0)
            values_seen += [v for v in mat.ravel().tolist() if math.isfinite(v)]
            ax.plot(steps, mean, color=f"C{i}", lw=1.6, label=f"{entry} ({len(cs)} seeds)")
            if len(cs) > 1:
                ax.fill_between(steps, lo, hi, color=f"C{i}", alpha=0.2, lw=0)
        _scale(ax, values_seen)
        ax.set_title({"base loss": "base loss (objective, without λ·R)", "λ·R": "λ·R (weighted regularisers)"}.get(key, key))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    # One legend below the panels: inside a panel, entry names squeeze the panels to slivers.
    handles, labels = fig.axes[0].get_legend_handles_labels() if fig.axes else ([], [])
    if handles:
        fig.legend(handles, labels, loc="outside lower center", fontsize=7, ncols=1)
    seeds = _seeds_text(agg.judged_seeds)
    return _finish(fig, ds, "curves", out_dir, f"{ds}: training curves of the shown settings, judged seeds {seeds} "
                   "(line: mean, band: min–max)",
                   f"{ds}: training curves over the judged seeds {seeds}: base loss and λ·R in separate panels "
                   "(mean, band: min to max)")


def _finish(fig, ds: str, kind: str, out_dir: Path, title: str, caption: str) -> dict[str, Any]:
    """Title, save as ``<dataset>-<kind>.png`` and return the figure's manifest record."""
    fig.suptitle(title, fontsize=10)
    path = out_dir / f"{slug(ds)}-{kind}.png"
    _save(fig, path)
    return {"path": f"figures/{path.name}", "kind": kind, "dataset": ds, "caption": caption}


def _scale(ax, values: list[float]) -> None:
    """Losses fall by orders of magnitude early on: a log axis keeps the end readable. A term
    that is exactly 0 or changes sign (a clipped or plain GMG) would vanish from a log axis and
    sit flat on a linear one next to its early values, so it gets a symmetric log axis whose
    linear band is set by its smallest non-zero magnitude: a term near 0 stays visible."""
    if not values:
        return
    lo, hi = min(values), max(values)
    if lo > 0 and hi / lo > 20:
        ax.set_yscale("log")
    elif lo <= 0:
        mags = [abs(v) for v in values if v != 0]
        if mags and max(mags) / min(mags) > 20:
            linthresh = max(min(mags), max(mags) * 1e-6)
            ax.set_yscale("symlog", linthresh=linthresh)
            _symlog_ticks(ax, linthresh, lo, hi)
        ax.axhline(0.0, color="0.3", lw=0.6, ls=":")


def _symlog_ticks(ax, linthresh: float, lo: float, hi: float) -> None:
    """0 and powers of ten outside the linear band, at most ~4 a side: matplotlib's default
    puts a label at every decade and at ±linthresh, and they overlap around 0."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    first = math.floor(math.log10(linthresh)) + 1
    ticks, labels = [0.0], ["0"]
    for sign, bound in ((1, hi), (-1, lo)):
        if sign * bound <= linthresh:
            continue
        last = math.ceil(math.log10(abs(bound)))
        step = max(1, math.ceil((last - first + 1) / 4))
        for k in range(last, first - 1, -step):
            ticks.append(sign * 10.0 ** k)
            labels.append(f"{'−' if sign < 0 else ''}1e{k}")
    order = np.argsort(ticks)
    ax.yaxis.set_major_locator(FixedLocator([ticks[i] for i in order]))
    ax.yaxis.set_major_formatter(FixedFormatter([labels[i] for i in order]))
    ax.yaxis.set_minor_locator(FixedLocator([]))


def health_figure(agg: Aggregate, ds: str, healths: dict[str, dict], out_dir: Path) -> dict[str, Any] | None:
    """Per run of each shown regularised entry: each term's gradient share over training (log
    axis), with the 1 % line below which a term counts as not acting (harness/health.py)."""
    items = [(short_label(agg, e, r), r) for e, r in _board_entries(agg, ds)]
    runs = agg.judged  # the seeds of the tables
    panels: list[tuple[str, list[tuple[int, str, list]]]] = []
    for entry, row in items:
        sub = runs[(runs["dataset"] == ds) & (runs["method"] == row["method"]) & (runs["setting"] == row["setting"])
                   & (runs["status"] == "done")]
        lines = []
        for rid, seed in zip(sub["run_id"], sub["seed"]):
            for term, rec in ((healths.get(rid) or {}).get("terms") or {}).items():
                if rec.get("series"):
                    lines.append((int(seed), term, rec["series"]))
        if lines:
            panels.append((entry, lines))
    if not panels:
        return None
    ncols = min(len(panels), 2)
    nrows = math.ceil(len(panels) / ncols)
    fig = _figure(4.8 * ncols, 3.0 * nrows + 0.3)
    for j, (entry, lines) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, j + 1)
        for k, (seed, term, series) in enumerate(lines):
            steps = [p[0] for p in series]
            share = [max(p[1], 1e-7) for p in series]  # an exact 0 sits at the axis floor
            ax.plot(steps, share, color=f"C{k % 10}", lw=1.4, marker=".", ms=3, label=f"{term}, seed {seed}")
        ax.axhline(0.01, color="C3", lw=1, ls="--", label="1 % (inert below)")
        ax.set_yscale("log")
        ax.set_ylim(1e-7, 1.0)
        ax.set_title(entry, fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("gradient share")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    seeds = _seeds_text(agg.judged_seeds)
    return _finish(fig, ds, "health", out_dir, f"{ds}: regulariser gradient share ‖λ∇R‖ / (‖λ∇R‖ + ‖∇L_base‖), "
                   f"per run of the judged seeds {seeds}",
                   f"{ds}: the regulariser gradient share over training of each run of the judged seeds {seeds} "
                   "(dashed: 1 %)")


def _representative(agg: Aggregate, ds: str, row) -> tuple[str, int] | None:
    """The run of the shown setting whose selection value is nearest the median (ties: lower seed)."""
    sel = agg.options.selection
    runs = agg.judged
    sub = runs[(runs["dataset"] == ds) & (runs["method"] == row["method"]) & (runs["setting"] == row["setting"])
               & (runs["status"] == "done")].sort_values("seed")
    if sub.empty:
        return None
    vals = sub[sel].to_numpy(float)
    if np.isfinite(vals).any():
        med = np.nanmedian(vals)
        dist = np.where(np.isfinite(vals), np.abs(vals - med), np.inf)
        k = int(np.argmin(dist))
    else:
        k = 0
    return str(sub["run_id"].iloc[k]), int(sub["seed"].iloc[k])


def _images(x: np.ndarray) -> np.ndarray:
    """NCHW in [0, 1] → NHWC, greyscale squeezed for imshow."""
    x = np.clip(np.transpose(x, (0, 2, 3, 1)), 0.0, 1.0)
    return x[..., 0] if x.shape[-1] == 1 else x


def _mosaic(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """rows of images [k, H, W(, C)] → one padded image."""
    h, w = rows[0].shape[1:3]
    ncol = max(len(r) for r in rows)
    shape = (len(rows) * (h + pad) + pad, ncol * (w + pad) + pad) + rows[0].shape[3:]
    canvas = np.ones(shape, dtype=np.float32)
    for i, r in enumerate(rows):
        for j, img in enumerate(r):
            canvas[pad + i * (h + pad): pad + i * (h + pad) + h, pad + j * (w + pad): pad + j * (w + pad) + w] = img
    return canvas


def model_figures(model, dataset, entry: str, ds: str, run_id: str, seed: int, out_dir: Path,
                  *, steps: int = 9, span: float = 2.5, n_recon: int = 8) -> list[dict[str, Any]]:
    """Latent traversals and reconstructions of one trained VAE, on fixed samples (RandomState(0))."""
    import torch

    rs = np.random.RandomState(0)
    x = dataset.sample_observations(max(n_recon, 64), rs)  # NHWC float in [0, 1]
    xt = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float()
    model.eval()
    with torch.no_grad():
        mu, logvar = model.encode(xt)
        kl = (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).mean(0).numpy()
        order = np.argsort(-kl, kind="stable")
        values = torch.linspace(-span, span, steps)
        rows = []
        for dim in order:
            z = mu[:1].repeat(steps, 1)
            z[:, dim] = values
            rows.append(_images(torch.sigmoid(model.decode(z)).numpy()))
        recon = torch.sigmoid(model.decode(mu[:n_recon])).numpy()
    inputs = _images(xt[:n_recon].numpy())

    records = []
    cmap = "gray" if inputs.ndim == 3 else None
    base = f"{slug(ds)}-{slug(entry)}"
    mosaic = _mosaic(rows)
    fig = _figure(0.62 * steps + 1.2, 0.62 * len(rows) + 0.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(mosaic, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    h = rows[0].shape[1] + 2
    ax.set_yticks([2 + h * i + h / 2 - 1 for i in range(len(rows))])
    ax.set_yticklabels([f"z{d} KL {kl[d]:.2f}" for d in order], fontsize=7)
    w = rows[0].shape[2] + 2
    ax.set_xticks([2 + w * j + w / 2 - 1 for j in range(steps)])
    ax.set_xticklabels([f"{v:+.1f}" for v in values.tolist()], fontsize=7)
    ax.set_title(f"{entry} on {ds}, seed {seed}", fontsize=8)
    path = out_dir / f"{base}-traversal.png"
    _save(fig, path)
    records.append({"path": f"figures/{path.name}", "kind": "traversal", "dataset": ds, "entry": entry,
                    "run_id": run_id, "seed": seed, "caption": f"{entry}: latent traversals on {ds}"})

    fig = _figure(0.8 * n_recon + 0.8, 2.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(_mosaic([inputs, _images(recon)]), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([2 + h / 2 - 1, 2 + h + h / 2 - 1])
    ax.set_yticklabels(["input", "output"], fontsize=8)
    ax.set_xticks([])
    ax.set_title(f"{entry} on {ds}, seed {seed}", fontsize=8)
    path = out_dir / f"{base}-reconstruction.png"
    _save(fig, path)
    records.append({"path": f"figures/{path.name}", "kind": "reconstruction", "dataset": ds, "entry": entry,
                    "run_id": run_id, "seed": seed, "caption": f"{entry}: reconstructions on {ds}"})
    return records


def make_figures(agg: Aggregate, store, out_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every figure of a release, and notes on the ones that could not be made (and why)."""
    records: list[dict[str, Any]] = []
    notes: list[str] = []
    curves: dict[str, list[dict]] = {}
    healths: dict[str, dict] = {}
    for rid in agg.runs.loc[agg.runs["status"] == "done", "run_id"]:
        if store is not None and store.has_result(rid):
            res = store.read_result(rid)
            # λ as the run recorded it; a term without a recorded weight leaves the loss unsplit.
            weights = {r["name"]: (r.get("params") or {}).get("weight")
                       for r in (res.get("config") or {}).get("regularisers") or [] if isinstance(r, dict) and "name" in r}
            curves[rid] = split_loss((res.get("training") or {}).get("curve") or [], weights)
            healths[rid] = res.get("health") or {}
    for ds in agg.datasets:
        done = agg.runs[(agg.runs["dataset"] == ds) & (agg.runs["status"] == "done")]
        if done.empty or not done[agg.options.selection].notna().any():
            notes.append(f"{ds}: no finished run with a {agg.options.selection} value, so no figures")
            continue
        records.append(selection_chart(agg, ds, out_dir))
        rec = training_curves(agg, ds, curves, out_dir)
        if rec is not None:
            records.append(rec)
        else:
            notes.append(f"{ds}: no training curves in the results")
        rec = health_figure(agg, ds, healths, out_dir)
        if rec is not None:
            records.append(rec)
        dataset = None
        shown_methods: set[str] = set()
        for entry, row in _board_entries(agg, ds):
            if agg.options.all_settings:
                # Every setting is a row; one model per method (its best-ranked setting) keeps
                # a large grid's release small.
                if row["method"] in shown_methods:
                    continue
                shown_methods.add(row["method"])
            pick = _representative(agg, ds, row)
            if pick is None:
                notes.append(f"{ds}: {entry}: no finished run, so no traversals or reconstructions")
                continue
            rid, seed = pick
            model_path = store.model_path(rid) if store is not None else None
            if model_path is None or not model_path.is_file():
                notes.append(f"{ds}: {entry}: model.pt of run {rid} is not in the results store, "
                             "so no traversals or reconstructions")
                continue
            try:
                from gmgbench.harness import checkpoints
                from gmgbench.harness import data as datasets

                model, run = checkpoints.load_model(model_path)
                if dataset is None:
                    dataset = datasets.load(run.dataset, run.dataset_root)
                records += model_figures(model, dataset, entry, ds, rid, seed, out_dir)
            except Exception as err:  # a figure must not block a release; say why it is missing
                if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise  # ... but a full disk must: no release without its figures
                notes.append(f"{ds}: {entry}: traversals failed ({type(err).__name__}: {err})")
    return records, notes
