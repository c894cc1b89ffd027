from __future__ import annotations

from pathlib import Path

import pytest
import yaml


@pytest.fixture
def write_spec(tmp_path: Path):
    """Write a study spec dict to tmp_path/<name>.yaml and return its path."""

    def write(spec: dict, name: str = "study.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    return write


@pytest.fixture
def tiny_spec() -> dict:
    return {
        "name": "tiny",
        "datasets": ["dsprites_procedural"],
        "methods": [
            {"label": "bvae", "objective": "beta_vae", "params": {"beta": [1.0, 4.0]}},
        ],
        "seeds": 2,
        "train": {"steps": 4, "batch_size": 8, "checkpoint_every": 2, "log_every": 1, "num_threads": 1},
        "evaluation": {"metrics": {"mig": {"num_train": 64, "batch_size": 16}}},
        "leaderboard": {"selection": "mig.discrete_mig"},  # the default (DCI) is not computed here
    }
