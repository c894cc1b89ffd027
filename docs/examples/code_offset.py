"""A metric plugin: how far a model's codes sit from the origin (lower is better here).

One file, named under a study spec's ``plugins:``; see docs/new-metric.md. The test suite runs
it through a tiny study onto a board (tests/leaderboard/test_metric_plugin.py).
"""
from __future__ import annotations

import numpy as np

from gmgbench.metrics import Metric, register


def code_offset(ground_truth_data, representation_function, random_state, artifact_dir=None, num_train=1000):
    """dlib's dataset-API signature: the data, the encoder (float32 NHWC batch -> (B, D)
    posterior means), a RandomState to draw from, then the settings with their defaults."""
    codes = representation_function(ground_truth_data.sample_observations(num_train, random_state))
    return {"offset": float(np.abs(codes).mean()), "dims": float(codes.shape[1])}


register(Metric(
    "code_offset", code_offset, ("offset", "dims"),
    dlib_name=None,               # dlib has no such metric: the export uses "code_offset"
    sizes={"num_train": 1000},    # the sample sizes, as the signature has them
    cost="cheap",                 # a mean over the codes
    lower=("offset",),            # boards rank and bold it lowest-first
    counts=("dims",),             # not a score: shown, never ranked
))
