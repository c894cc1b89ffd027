"""Whether a published release is still what was published: every file against the SHA-256
its manifest lists (none missing, none added), the manifest against itself and the per-run
table, the results store's files against the manifest, and :func:`verify`, which also
rebuilds ``leaderboard.md`` and compares it byte for byte (``gmgbench leaderboard --rebuild``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from gmgbench.harness.leaderboard.aggregate import _sha256
from gmgbench.harness.leaderboard.manifest import read_manifest, rebuild, spec_from_dict
from gmgbench.harness.leaderboard.options import LeaderboardError
from gmgbench.harness.spec import spec_hash

__all__ = ["check_results", "check_manifest", "check_files", "verify"]


def check_results(version_dir: str | Path, results: str | Path) -> list[str]:
    """Result files of the store ``results`` that differ from the release's manifest (empty: all match)."""
    m = read_manifest(Path(version_dir))
    root, problems = Path(results), []
    for r in m["results"]:
        path = root / r["file"]
        if not path.is_file():
            problems.append(f"{path}: listed in manifest.json but not in the results store")
        elif _sha256(path) != r["sha256"]:
            problems.append(f"{path}: SHA-256 differs from manifest.json (the result changed after publication)")
    return problems


def checkread_manifest(version_dir: str | Path) -> list[str]:
    """What in ``manifest.json`` itself contradicts the rest of it or the release's tables
    (it lists every other file's SHA-256, but none of its own): the recorded spec against its
    ``spec_sha256``, the listed results against ``data/runs.parquet``."""
    version_dir = Path(version_dir)
    path = version_dir / "manifest.json"
    m = read_manifest(version_dir)
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
    listed = read_manifest(version_dir).get("files") or {}
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
    problems = check_files(version_dir) + checkread_manifest(version_dir)
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
