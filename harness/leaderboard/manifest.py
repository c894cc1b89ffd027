"""A published release read back: its version folders ``vN``, its ``manifest.json``, and the
markdown rebuilt from them.

The manifest holds everything the markdown shows (spec, options, commit, command, figure
list) and ``data/runs.parquet`` the per-run rows, so :func:`rebuild` reproduces
``leaderboard.md`` byte for byte without the results store. Writing a release is
:mod:`~gmgbench.harness.leaderboard.release`; checking one against its manifest,
:mod:`~gmgbench.harness.leaderboard.integrity`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd

from gmgbench.harness.fileio import load_json
from gmgbench.harness.leaderboard import render
from gmgbench.harness.leaderboard.aggregate import _sha256, aggregate
from gmgbench.harness.leaderboard.options import LeaderboardError, Options
from gmgbench.harness.spec import spec_from_dict as _spec_from_dict

__all__ = ["MANIFEST_FORMAT", "versions", "spec_from_dict", "read_manifest", "rebuild"]

MANIFEST_FORMAT = 1
_VERSION = re.compile(r"^v(\d+)$")


# -- the spec as data: harness/spec.py owns it (re-exported for the manifest's readers) -------
def spec_from_dict(d: dict[str, Any]):
    """:func:`gmgbench.harness.spec.spec_from_dict`, failing as a :class:`LeaderboardError`."""
    return _spec_from_dict(d, error=LeaderboardError)


def versions(study_dir: Path) -> list[int]:
    """Published versions: ``vN`` folders with a manifest (a stray empty ``vN/`` is none)."""
    if not study_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in study_dir.iterdir()
                  if p.is_dir() and (m := _VERSION.match(p.name)) and (p / "manifest.json").is_file())


def read_manifest(version_dir: Path) -> dict[str, Any]:
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
    m = read_manifest(version_dir)
    runs_path = version_dir / "data" / "runs.parquet"
    want = m.get("files", {}).get("data/runs.parquet")
    if not runs_path.is_file():
        raise LeaderboardError(f"{runs_path}: missing; the release's per-run table is needed to rebuild it")
    if want and _sha256(runs_path) != want:
        raise LeaderboardError(f"{runs_path}: SHA-256 differs from manifest.json; the file changed after publication")
    spec = spec_from_dict(m["spec"])
    agg = aggregate(spec, pd.read_parquet(runs_path), Options.from_dict(m["options"]))
    return render.render(agg, release=m)
