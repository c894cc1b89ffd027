"""Leaderboard tests: releases go to tmp_path (helper modules import by name: see pytest's pythonpath)."""
from __future__ import annotations

import pytest

from gmgbench.harness import leaderboard
from lb_helpers import toy_store


@pytest.fixture(autouse=True)
def _leaderboards_in_tmp(tmp_path, monkeypatch):
    # Nothing a test builds may land in the repository's leaderboards/.
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "leaderboards"))


@pytest.fixture
def released(tmp_path):
    """A toy study published once: (spec, store, leaderboards root, its v1 folder)."""
    spec, store = toy_store(tmp_path)
    root = tmp_path / "lb"
    v1 = leaderboard.publish(spec, store, root=root, figures=False, command="gmgbench leaderboard toy.yaml --publish")
    return spec, store, root, v1
