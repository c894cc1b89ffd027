"""Publishing an immutable release ``leaderboards/<study>/vN/``, and the seed plan read from one.

A release folder is assembled under a temporary name and renamed into place, so a reader
never sees half a release and an existing version is never replaced. Its ``manifest.json``
holds everything the markdown shows (spec, options, commit, command, figure list), and
``data/runs.parquet`` holds the per-run rows, so
:func:`~gmgbench.harness.leaderboard.manifest.rebuild` reproduces ``leaderboard.md`` byte for
byte without the results store. Publishing also writes ``LATEST``, the study's
``CHANGELOG.md`` (:mod:`~gmgbench.harness.leaderboard.changelog`) and the root's
``README.md`` (:mod:`~gmgbench.harness.leaderboard.index`); checks of a published release are
:mod:`~gmgbench.harness.leaderboard.integrity`.
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
import stat
import time
from pathlib import Path
from typing import Any

import pandas as pd

from gmgbench.harness.fileio import DiskFull, atomic_write, atomic_write_text
from gmgbench.harness.leaderboard import export, render
from gmgbench.harness.leaderboard.aggregate import Aggregate, _sha256, aggregate
from gmgbench.harness.leaderboard.changelog import changes, write_changelog
from gmgbench.harness.leaderboard.index import write_index
from gmgbench.harness.leaderboard.manifest import MANIFEST_FORMAT, read_manifest, spec_from_dict, versions
from gmgbench.harness.leaderboard.options import LeaderboardError, Options
from gmgbench.harness.spec import spec_hash, spec_to_dict

__all__ = ["ReleaseExists", "publish_release", "plan", "spec_hash", "spec_to_dict"]


class ReleaseExists(LeaderboardError, FileExistsError):
    """The version folder exists; releases are never overwritten."""


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
    write_changelog(study_dir)
    write_index(root)
    return final


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
    m = read_manifest(version_dir)
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
