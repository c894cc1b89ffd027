"""Leaderboard tests: releases go to tmp_path (helper modules import by name: see pytest's pythonpath)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _leaderboards_in_tmp(tmp_path, monkeypatch):
    # Nothing a test builds may land in the repository's leaderboards/.
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "leaderboards"))
