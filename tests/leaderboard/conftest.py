"""Leaderboard tests: helper module on sys.path, single-threaded torch, releases in tmp_path."""
from __future__ import annotations

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def _leaderboards_in_tmp(tmp_path, monkeypatch):
    # Nothing a test builds may land in the repository's leaderboards/.
    monkeypatch.setenv("GMGBENCH_LEADERBOARDS", str(tmp_path / "leaderboards"))
