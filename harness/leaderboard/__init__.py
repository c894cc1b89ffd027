"""Leaderboards: results store → pandas → markdown, plus immutable, rebuildable releases.

    board = build(spec, store)          # aggregate; board.markdown is the "latest" text
    write_latest(board)                 # leaderboards/<study>/latest.md (+ latest/ tables), not a release
                                        # (preview.md when board.preview: a narrowed or elsewhere-read run)
    publish(spec, store)                # leaderboards/<study>/vN/, LATEST, CHANGELOG.md, README.md
    verify("leaderboards/demo/v1")      # rebuild leaderboard.md from the manifest, compare bytes

The leaderboards root is ``root=`` if given, else ``$GMGBENCH_LEADERBOARDS``, else
``<project>/leaderboards`` (the current folder or ``--project``; never the install's
folder, see :mod:`gmgbench.harness.project`). See docs/leaderboards.md.
"""
from __future__ import annotations

import importlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gmgbench.harness.leaderboard.options import LeaderboardError, Options

if TYPE_CHECKING:
    from gmgbench.harness.leaderboard.aggregate import Aggregate

# Imported on first use: the spec loader checks leaderboard options (options.py) without
# paying for pandas, tabulate and matplotlib.
_LAZY = {"export_dlib": "export", "ReleaseExists": "release", "check_results": "integrity", "rebuild": "manifest",
         "spec_from_dict": "manifest", "spec_hash": "release", "spec_to_dict": "release", "verify": "integrity"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"gmgbench.harness.leaderboard.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Board", "build", "write_latest", "publish", "rebuild", "verify", "leaderboards_root",
           "check_results", "LeaderboardError", "ReleaseExists", "Options", "export_dlib", "spec_to_dict", "spec_from_dict",
           "spec_hash"]

ENV_ROOT = "GMGBENCH_LEADERBOARDS"


def leaderboards_root(root: str | Path | None = None) -> Path:
    from gmgbench.harness import project

    return Path(root) if root is not None else project.leaderboards_dir()


@dataclass
class Board:
    """A built leaderboard: the aggregate plus where it goes."""

    spec: object
    store: object
    agg: Aggregate
    root: Path
    # Why this board is not the study's working board (a run narrowed by --only/--set or read
    # from another results store), or None; a preview never replaces latest.md.
    preview: str | None = None

    @property
    def markdown(self) -> str:
        from gmgbench.harness.leaderboard.render import render

        return render(self.agg, release=None, preview=self.preview)

    @property
    def study(self) -> str:
        return self.agg.study


def build(spec, store, *, all_settings: bool = False, root: str | Path | None = None,
          allow_stale: bool = False, preview: str | None = None) -> Board:
    """Aggregate the study's results (see :func:`gmgbench.harness.leaderboard.aggregate.aggregate`);
    ``allow_stale`` lets a cell average runs of different method code (marked in the cell);
    ``preview`` (why the board is not the study's own) makes it a labelled preview."""
    from gmgbench.harness.leaderboard.aggregate import aggregate, collect

    options = Options.from_spec(spec, all_settings=all_settings, allow_stale=allow_stale)
    agg = aggregate(spec, collect(spec, store), options)
    return Board(spec=spec, store=store, agg=agg, root=leaderboards_root(root), preview=preview)


def write_latest(board: Board, root: str | Path | None = None) -> Path:
    """Write ``<root>/<study>/latest.md`` and ``latest/{runs,aggregate,ranks}.{csv,parquet}``;
    a preview board goes to ``preview.md`` and ``preview/`` instead, leaving the study's
    working board as it was. A board is a preview when ``board.preview`` says why (a run
    narrowed by ``--only``/``--set``), or when it reads another results store than the one
    ``latest.md`` was built from (recorded in ``latest/source.json``).

    Overwritten on every call: it is a working view, never a release.
    """
    from gmgbench.harness.fileio import atomic_write_text
    from gmgbench.harness.leaderboard.release import _write_tables

    study_dir = leaderboards_root(root if root is not None else board.root) / board.study
    this = Path(board.store.root).resolve()
    owner = _latest_owner(study_dir, board.study)
    if not board.preview and owner is not None and owner != this:
        # Another results store's board must not replace the study's working board.
        board.preview = f"the results store `{this}` (the study's `latest.md` comes from `{owner}`)"
    name = "preview" if board.preview else "latest"
    _write_tables(board.agg, study_dir / name)
    if not board.preview:
        atomic_write_text(study_dir / "latest" / "source.json", json.dumps({"results": str(this)}) + "\n")
    path = study_dir / f"{name}.md"
    atomic_write_text(path, board.markdown)
    return path


def _latest_owner(study_dir: Path, study: str) -> Path | None:
    """The results store the study's ``latest.md`` was built from (``latest/source.json``); a
    ``latest.md`` from before that record belongs to the project's default store; None: no board yet."""
    from gmgbench.harness import project
    from gmgbench.harness.fileio import load_json

    if not (study_dir / "latest.md").is_file():
        return None
    record = study_dir / "latest" / "source.json"
    if record.is_file():
        results = load_json(record, what="working board record", error=LeaderboardError).get("results")
        if isinstance(results, str):
            return Path(results).resolve()
    return project.results_dir(study).resolve()


def _default_command(spec, all_settings: bool) -> str:
    if spec.path is None:
        return f"gmgbench.harness.leaderboard.publish(<spec {spec.name!r}>, all_settings={all_settings})"
    return "gmgbench leaderboard " + shlex.quote(str(spec.path)) + " --publish" + (" --all-settings" if all_settings else "")


def publish(spec, store, *, all_settings: bool = False, root: str | Path | None = None,
            command: str | None = None, version: int | None = None, figures: bool | None = None,
            allow_stale: bool = False, notes: str | None = None) -> Path:
    """Publish the next version ``<root>/<study>/vN/``; returns its folder.

    ``command`` is recorded as the build command (default: the equivalent ``gmgbench``
    call); ``version`` forces N and fails if that version exists; ``figures=False`` skips
    the figures (the spec's ``leaderboard.figures`` otherwise). ``notes`` (markdown) say
    why this version exists: they head its entry in the CHANGELOG and are kept in the manifest.
    """
    from gmgbench.harness.leaderboard.release import publish_release

    board = build(spec, store, all_settings=all_settings, root=root, allow_stale=allow_stale)
    return publish_release(board.agg, spec, store, root=board.root,
                           command=command or _default_command(spec, all_settings), version=version, figures=figures,
                           notes=notes)
