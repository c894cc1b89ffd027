"""Immutable releases ``leaderboards/<study>/vN/``: manifest, changelog, rebuild, index.

A release folder is assembled under a temporary name and renamed into place, so a reader
never sees half a release and an existing version is never replaced. Its ``manifest.json``
holds everything the markdown shows (spec, options, commit, command, figure list), and
``data/runs.parquet`` holds the per-run rows, so :func:`rebuild` reproduces
``leaderboard.md`` byte for byte without the results store.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pandas as pd

from gmgbench.harness.fileio import DiskFull, atomic_write, atomic_write_text, load_json
from gmgbench.harness.leaderboard import export, render
from gmgbench.harness.leaderboard.aggregate import Aggregate, _sha256, aggregate
from gmgbench.harness.leaderboard.options import LeaderboardError, Options
from gmgbench.harness.spec import spec_from_dict as _spec_from_dict
from gmgbench.harness.spec import spec_hash, spec_to_dict

__all__ = ["ReleaseExists", "spec_to_dict", "spec_from_dict", "spec_hash", "versions", "publish_release",
           "rebuild", "verify", "check_results", "check_files", "check_manifest", "changes", "write_index", "plan",
           "MANIFEST_FORMAT"]

MANIFEST_FORMAT = 1
_VERSION = re.compile(r"^v(\d+)$")


class ReleaseExists(LeaderboardError, FileExistsError):
    """The version folder exists; releases are never overwritten."""


# -- the spec as data: harness/spec.py owns it (re-exported for the manifest's readers) -------
def spec_from_dict(d: dict[str, Any]):
    """:func:`gmgbench.harness.spec.spec_from_dict`, failing as a :class:`LeaderboardError`."""
    return _spec_from_dict(d, error=LeaderboardError)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


# -- versions -----------------------------------------------------------------------------
def versions(study_dir: Path) -> list[int]:
    """Published versions: ``vN`` folders with a manifest (a stray empty ``vN/`` is none)."""
    if not study_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in study_dir.iterdir()
                  if p.is_dir() and (m := _VERSION.match(p.name)) and (p / "manifest.json").is_file())


def _write(path: Path, text: str) -> None:
    atomic_write_text(path, text)  # a full disk: one line naming the file, never a 0-byte file


def _write_tables(agg: Aggregate, data_dir: Path) -> None:
    # Each file whole or not at all (latest/ is rewritten in place on every board).
    for name, df in (("runs", agg.runs), ("aggregate", agg.table), ("ranks", agg.ranks)):
        atomic_write(data_dir / f"{name}.csv", lambda f: f.write(df.to_csv(index=False).encode()))
        atomic_write(data_dir / f"{name}.parquet", lambda f: df.to_parquet(f, index=False))


def _freeze(folder: Path) -> None:
    """Read-only files: a release is not edited by accident (``rm -r`` still removes it).
    Only the write bits go: who may read a file is what the umask gave it (0444 under 022)."""
    for p in folder.rglob("*"):
        if p.is_file():
            p.chmod(stat.S_IMODE(p.stat().st_mode) & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def publish_release(agg: Aggregate, spec, store, *, root: Path, command: str, version: int | None = None,
                    figures: bool | None = None, notes: str | None = None) -> Path:
    """Write ``root/<study>/vN/`` (N = last + 1 unless ``version``), LATEST, CHANGELOG.md, README.md."""
    from gmgbench.harness.results import provenance

    study_dir = root / agg.study
    existing = versions(study_dir)
    n = version if version is not None else (existing[-1] + 1 if existing else 1)
    final = study_dir / f"v{n}"
    if final.is_dir() and not (final / "manifest.json").exists() and not any(final.iterdir()):
        final.rmdir()  # a stray empty vN/ (a mkdir by hand, an aborted copy) is no release
    if final.is_dir() and not (final / "manifest.json").exists():
        raise ReleaseExists(f"{final}: a folder without manifest.json (not a published release: a copy or a "
                            f"hand-made folder?) is where v{n} would go; move it aside (mv {final} "
                            f"{final.with_name(f'v{n}.stray')}) and publish again")
    if final.exists():
        raise ReleaseExists(f"{final} already exists; published versions are never overwritten "
                            f"(next free version: v{(existing[-1] + 1) if existing else 1})")
    tmp = study_dir / f".v{n}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        prov = provenance()
        _write_tables(agg, tmp / "data")
        do_figures = agg.options.figures if figures is None else figures
        if do_figures:
            from gmgbench.harness.leaderboard import figures as figs

            from gmgbench.harness.leaderboard.forest import forest_plot

            fig_records, fig_notes = figs.make_figures(agg, store, tmp / "figures")
            forest = forest_plot(agg, tmp / "figures") if agg.options.text_version >= 3 else None
            fig_records += [forest] if forest is not None else []
        else:
            fig_records, fig_notes = [], []
        export.export_dlib(agg.runs, tmp / "dlib", spec)
        runs = agg.runs
        manifest: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "study": agg.study,
            "version": f"v{n}",
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "build_command": command,
            "git_commit": prov["git_commit"],
            # Uncommitted changes: no commit reproduces these numbers; the header says so.
            "code_dirty": str(prov["git_commit"]).endswith("-dirty"),
            "packages": prov["packages"],
            "python": prov["python"],
            "spec_path": str(spec.path) if spec.path else None,
            "spec_sha256": spec_hash(spec),
            "spec": spec_to_dict(spec),
            "spec_raw": spec.raw or None,
            "options": agg.options.to_dict(),
            "results_root": str(store.root) if store is not None else None,
            "results": [{"run_id": r.run_id, "status": r.status, "file": r.result_file, "sha256": r.result_sha256,
                         "git_commit": r.git_commit} for r in runs.itertuples() if r.result_file],
            "figures": fig_records,
            "figure_notes": fig_notes,
            # The publisher's words on why this version exists (the CHANGELOG's "Why" part).
            "notes": notes.strip() if notes and notes.strip() else None,
        }
        md = render.render(agg, release=manifest)
        _write(tmp / "leaderboard.md", md)
        earlier = [v for v in existing if v < n]
        prev = study_dir / f"v{earlier[-1]}" if earlier else None
        _write(tmp / "changes.md", changes(agg, prev, manifest))
        manifest["files"] = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        _write(tmp / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True, default=str) + "\n")
        _freeze(tmp)
        try:
            os.rename(tmp, final)  # fails if another publisher took this version meanwhile
        except OSError:
            raise ReleaseExists(f"{final} appeared while publishing; not overwritten") from None
    except OSError as err:  # DiskFull from our writers, or a raw one from matplotlib/pyarrow
        if not isinstance(err, DiskFull) and err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise DiskFull(f"{final}: no space left on device while writing the release; nothing was published "
                       f"(its partial folder is removed, no version number is used): free space and rerun") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    atomic_write_text(study_dir / "LATEST", f"v{versions(study_dir)[-1]}\n")  # an explicit older N keeps LATEST
    _write_changelog(study_dir)
    write_index(root)
    return final


# -- rebuild -------------------------------------------------------------------------------
def _manifest(version_dir: Path) -> dict[str, Any]:
    path = version_dir / "manifest.json"
    if not path.is_file():
        raise LeaderboardError(f"{path}: no manifest; --rebuild takes a release folder leaderboards/<study>/vN")
    m = load_json(path, what="manifest", error=LeaderboardError)
    if not isinstance(m, dict):
        raise LeaderboardError(f"{path}: not a release manifest (a JSON {type(m).__name__}, not an object); "
                               "the release was damaged after publication")
    if m.get("format") != MANIFEST_FORMAT:
        raise LeaderboardError(f"{path}: manifest format {m.get('format')!r}, this gmgbench reads {MANIFEST_FORMAT}")
    return m


def rebuild(version_dir: str | Path) -> str:
    """The markdown of a release, recomputed from its manifest and ``data/runs.parquet``.

    The per-run table is checked against the SHA-256 the manifest recorded first, so a
    tampered table is reported rather than silently rendered.
    """
    version_dir = Path(version_dir)
    m = _manifest(version_dir)
    runs_path = version_dir / "data" / "runs.parquet"
    want = m.get("files", {}).get("data/runs.parquet")
    if not runs_path.is_file():
        raise LeaderboardError(f"{runs_path}: missing; the release's per-run table is needed to rebuild it")
    if want and _sha256(runs_path) != want:
        raise LeaderboardError(f"{runs_path}: SHA-256 differs from manifest.json; the file changed after publication")
    spec = spec_from_dict(m["spec"])
    agg = aggregate(spec, pd.read_parquet(runs_path), Options.from_dict(m["options"]))
    return render.render(agg, release=m)


def plan(version_dir: str | Path, effect: float | None = None, pairs: int | None = None) -> str:
    """A seed plan from a published release, before training the next study: per claim and
    dataset, the observed sd of the paired differences and, at that sd and the release's Holm
    family, the MDE with the release's pairs (and with ``pairs``), the power at ``effect``
    (default: the observed |Δ|) and the pairs 80 % power at it needs. Markdown."""
    from tabulate import tabulate

    from gmgbench.harness.leaderboard.claims import ALPHA, judge
    from gmgbench.harness.leaderboard.power import MAX_PAIRS, mde, pairs_needed, power
    from gmgbench.harness.leaderboard.power import fmt as _g

    version_dir = Path(version_dir)
    m = _manifest(version_dir)
    opts = Options.from_dict(m["options"])
    if not opts.claims or opts.claims_test != "paired":
        raise LeaderboardError(f"{version_dir}: --power plans paired claims; this release has "
                               + ("no claims" if not opts.claims else f"claims_test {opts.claims_test}"))
    agg = aggregate(spec_from_dict(m["spec"]), pd.read_parquet(version_dir / "data" / "runs.parquet"), opts)
    rows = []
    for v in judge(agg):
        d = abs(effect) if effect is not None else abs(v.delta)
        n = pairs or v.n_pairs
        need = pairs_needed(d, v.sd, v.family, ALPHA, at_least=3)
        rows.append([v.claim.claim, v.dataset, v.n_pairs, _g(v.sd), v.family, _g(mde(v.sd, v.n_pairs, v.family)),
                     _g(mde(v.sd, n, v.family)), _g(d), _g(power(d, v.sd, n, v.family)),
                     "—" if not math.isfinite(d) or not math.isfinite(v.sd) or d == 0
                     else str(need) if need is not None else f"> {MAX_PAIRS}"])
    at = f"{pairs} pairs" if pairs else "its pairs"
    head = ["Claim", "Dataset", "Pairs", "sd of differences", "Holm family", "MDE (80 %) now", f"MDE at {at}",
            "Effect Δ" + (" (given)" if effect is not None else " (observed, absolute)"), f"Power at Δ, {at}",
            "Pairs for 80 % at Δ"]
    return (f"Seed plan from {version_dir} ({m['study']} {m['version']}): paired t-test, two-sided, Holm's first "
            f"step (α/family, α = {ALPHA:g}); power from the noncentral t at the observed sd of each claim's per-seed "
            "differences (an estimate from few pairs: plan with margin).\n\n"
            + tabulate(rows, headers=head, tablefmt="pipe", disable_numparse=True) + "\n")


def check_results(version_dir: str | Path, results: str | Path) -> list[str]:
    """Result files of the store ``results`` that differ from the release's manifest (empty: all match)."""
    m = _manifest(Path(version_dir))
    root, problems = Path(results), []
    for r in m["results"]:
        path = root / r["file"]
        if not path.is_file():
            problems.append(f"{path}: listed in manifest.json but not in the results store")
        elif _sha256(path) != r["sha256"]:
            problems.append(f"{path}: SHA-256 differs from manifest.json (the result changed after publication)")
    return problems


def check_manifest(version_dir: str | Path) -> list[str]:
    """What in ``manifest.json`` itself contradicts the rest of it or the release's tables
    (it lists every other file's SHA-256, but none of its own): the recorded spec against its
    ``spec_sha256``, the listed results against ``data/runs.parquet``."""
    version_dir = Path(version_dir)
    path = version_dir / "manifest.json"
    m = _manifest(version_dir)
    problems = []
    try:
        same_spec = spec_hash(spec_from_dict(m["spec"])) == m.get("spec_sha256")
    except (LeaderboardError, KeyError, TypeError, ValueError) as err:
        problems.append(f"{path}: the recorded spec does not load ({err}); it was edited after publication")
    else:
        if not same_spec:
            problems.append(f"{path}: the recorded spec differs from its spec_sha256 (edited after publication)")
    runs_path = version_dir / "data" / "runs.parquet"
    listed_sha = (m.get("files") or {}).get("data/runs.parquet")
    # A changed or missing table is check_files' finding; compare only with the one published.
    if runs_path.is_file() and listed_sha == _sha256(runs_path) and isinstance(m.get("results"), list):
        runs = pd.read_parquet(runs_path)
        table = sorted((r.run_id, r.result_file, r.result_sha256) for r in runs.itertuples() if r.result_file)
        listed = sorted((r.get("run_id"), r.get("file"), r.get("sha256")) for r in m["results"] if isinstance(r, dict))
        if table != listed:
            problems.append(f"{path}: its results list differs from data/runs.parquet (edited after publication)")
    return problems


def check_files(version_dir: str | Path) -> list[str]:
    """Files of a release that differ from the SHA-256 its manifest lists, are missing, or are
    not listed at all (``manifest.json`` itself excepted); empty when every file matches."""
    version_dir = Path(version_dir)
    listed = _manifest(version_dir).get("files") or {}
    problems = []
    for rel, want in sorted(listed.items()):
        path = version_dir / rel
        if not path.is_file():
            problems.append(f"{path}: listed in manifest.json but missing")
        elif _sha256(path) != want:
            problems.append(f"{path}: SHA-256 differs from manifest.json (the file changed after publication)")
    for path in sorted(p for p in version_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(version_dir).as_posix()
        if rel != "manifest.json" and rel not in listed:
            problems.append(f"{path}: not listed in manifest.json (added after publication)")
    return problems


def verify(version_dir: str | Path, results: str | Path | None = None) -> tuple[bool, str]:
    """``(identical, report)``: rebuild leaderboard.md and compare it byte for byte with the
    published one (the report is a unified diff), check every file the manifest lists
    against its SHA-256 (and that no file was added); with ``results``, also check that
    store's result files against their SHA-256 in the manifest."""
    import difflib

    version_dir = Path(version_dir)
    problems = check_files(version_dir) + check_manifest(version_dir)
    try:
        new = rebuild(version_dir)
    except LeaderboardError as err:  # e.g. a tampered runs.parquet: already named above
        if not problems:
            raise
        return False, "".join(p + "\n" for p in problems) + f"(not rebuilt: {err})\n"
    old = (version_dir / "leaderboard.md").read_text()
    report = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "published", "rebuilt"))
    problems += check_results(version_dir, results) if results is not None else []
    if problems:
        report += "".join(p + "\n" for p in problems)
    return new == old and not problems, report


# -- changelog -----------------------------------------------------------------------------
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


def _write_changelog(study_dir: Path) -> None:
    parts = [f"# Changelog: {study_dir.name}", "",
             "Generated by `gmgbench leaderboard --publish` from each version's `changes.md`; newest first.", ""]
    for n in reversed(versions(study_dir)):
        f = study_dir / f"v{n}" / "changes.md"
        if f.is_file():
            parts += [f.read_text().rstrip("\n"), ""]
    atomic_write_text(study_dir / "CHANGELOG.md", "\n".join(parts))


def _index_selection(options: dict[str, Any]) -> str:
    seeds = options.get("selection_seeds")
    held_out = seeds is not None and not options.get("all_settings")
    return f"`{options['selection']}`" + (f" on seeds {', '.join(map(str, seeds))}, judged on the others"
                                          if held_out else "")


def _leader(ranks: pd.DataFrame) -> str:
    """The first-ranked entry, named only when its rank interval lies wholly above the next
    entry's (no overlap); otherwise the board has no clear leader, whatever the point ranks say."""
    if not len(ranks):
        return "— (nothing ranked)"
    first = ranks.iloc[0]
    name = f"{first['entry']} ({first['avg_rank']:.2f}"
    if len(ranks) == 1:
        return name + ", the only ranked entry)"
    nxt = ranks.iloc[1]
    if math.isfinite(first["rank_hi"]) and math.isfinite(nxt["rank_lo"]) and first["rank_hi"] < nxt["rank_lo"]:
        return name + f", [{first['rank_lo']:.2f}, {first['rank_hi']:.2f}])"
    return "no clear leader: the best rank's interval overlaps the next"


def write_index(root: Path) -> Path:
    """``root/README.md``: one row per study with a published version."""
    from tabulate import tabulate

    rows = []
    for study_dir in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        latest = study_dir / "LATEST"
        if not latest.is_file():
            continue
        v = latest.read_text().strip()
        mpath = study_dir / v / "manifest.json"
        if not mpath.is_file():
            continue
        m = load_json(mpath, what="manifest", error=LeaderboardError)
        ranks = pd.read_parquet(study_dir / v / "data" / "ranks.parquet")
        runs = pd.read_parquet(study_dir / v / "data" / "runs.parquet")
        leader = _leader(ranks[ranks["avg_rank"].notna()].sort_values("avg_rank", kind="stable"))
        rows.append([f"[{study_dir.name}]({study_dir.name}/{v}/leaderboard.md)", v, m["created_utc"][:10],
                     _index_selection(m["options"]), f"{int((runs['status'] == 'done').sum())}/{len(runs)}",
                     leader.replace("|", "\\|"), f"[changes]({study_dir.name}/CHANGELOG.md)",
                     ", ".join(f"[v{n}]({study_dir.name}/v{n}/leaderboard.md)" for n in versions(study_dir))])
    text = ["# Published leaderboards", "",
            "Generated by `gmgbench leaderboard STUDY.yaml --publish`; do not edit by hand. Each version "
            "folder is immutable and rebuildable with `gmgbench leaderboard --rebuild <study>/vN`. A leader is "
            "named only when its rank's bootstrap interval lies wholly above the next entry's.", ""]
    if rows:
        text.append(tabulate(rows, headers=["Study", "Latest", "Published (UTC)", "Selection", "Runs done",
                                            "Leader (avg rank, 95 % interval)", "Changelog", "Versions"],
                             tablefmt="pipe", disable_numparse=True))
    else:
        text.append("None yet.")
    path = root / "README.md"
    atomic_write_text(path, "\n".join(text) + "\n")
    return path
