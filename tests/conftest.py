"""Shared test set-up: deterministic, single-threaded, offline."""
from __future__ import annotations

import os
import sys

# Before torch/JAX/POT are imported anywhere: JAX must not grab a GPU's memory, POT's
# backend probing costs seconds, and 2-core CI machines oversubscribe with many threads.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
for _backend in ("PYTORCH", "JAX", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_backend}", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def rng() -> np.random.RandomState:
    return np.random.RandomState(0)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def site_packages(tmp_path, monkeypatch):
    """An empty site-packages on sys.path for the distributions of tests/dist_helpers.py; the
    ``gmgbench_*`` modules a test imports from it are forgotten after the test."""
    path = tmp_path / "site-packages"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    before = set(sys.modules)
    yield path
    for name in set(sys.modules) - before:
        if name.startswith("gmgbench_"):
            del sys.modules[name]
