"""The project folder: where results and leaderboards go unless told otherwise.

It is ``$GMGBENCH_PROJECT`` (``gmgbench --project DIR`` sets it for the command and its
workers), else the current folder, never the folder gmgbench is installed in. Results go
to ``<project>/results/<study>/`` (``--results`` overrides), leaderboards to
``<project>/leaderboards/`` (``leaderboard --root`` or ``$GMGBENCH_LEADERBOARDS`` override).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV", "root", "results_dir", "leaderboards_dir"]

ENV = "GMGBENCH_PROJECT"
LEADERBOARDS_ENV = "GMGBENCH_LEADERBOARDS"


def root() -> Path:
    env = os.environ.get(ENV)
    return Path(env) if env else Path.cwd()


def results_dir(study: str) -> Path:
    return root() / "results" / study


def leaderboards_dir() -> Path:
    env = os.environ.get(LEADERBOARDS_ENV)
    return Path(env) if env else root() / "leaderboards"
