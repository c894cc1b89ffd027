"""The Figure 2 toy: GMG keeps the mixture's layout while fitting; DST keeps it by not fitting."""
from __future__ import annotations

import pytest
import torch

from gmgbench.methods.toys import figure2

torch.set_num_threads(1)


@pytest.mark.slow
def test_gmg_fits_and_preserves_geometry_better_than_fit_alone_while_dst_cannot_fit(tmp_path):
    res = figure2.run(steps=400, out=tmp_path / "toy.png", seed=1)
    none, dst, gmg = res["none"], res["dst"], res["gmg"]
    assert (tmp_path / "toy.png").stat().st_size > 10_000
    # DST keeps the shape only by refusing the 3× scale change: its fit is far worse.
    assert gmg.fit < 0.5 * dst.fit
    # Among maps that fit, GMG's is the less distorted (scale-free DST on held-out points).
    assert gmg.distortion < 0.6 * none.distortion
    assert gmg.knn > none.knn
