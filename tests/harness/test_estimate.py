from __future__ import annotations

import pytest

from gmgbench.harness import estimate
from gmgbench.harness.results import ResultsStore
from gmgbench.harness.spec import load_spec


def test_costs_add_per_term_and_scale_with_batch(write_spec, tiny_spec):
    tiny_spec["methods"].append({"label": "g", "objective": "beta_vae",
                                 "regularisers": [{"name": "gmg"}, {"name": "hfs"}], "train": {"batch_size": 16}})
    runs = load_spec(write_spec(tiny_spec)).runs()
    plain = next(r for r in runs if r.method == "bvae")
    gmg = next(r for r in runs if r.method == "g")
    assert estimate.relative_cost(plain) == pytest.approx(8 / 64)  # tiny_spec's batch is 8
    assert estimate.relative_cost(gmg) == pytest.approx((1 + 0.65 + 0.15) * 16 / 64)
    hours = estimate.estimate_hours([plain, gmg], step_seconds=3600.0)
    assert hours == pytest.approx(4 * (8 / 64 + 1.8 * 16 / 64))


def test_describe_uses_profile_then_store(write_spec, tiny_spec, tmp_path):
    runs = load_spec(write_spec(tiny_spec)).runs()
    store = ResultsStore(tmp_path)
    assert "an assumption" in estimate.describe(runs, store, None)
    assert "from the profile's step_seconds" in estimate.describe(runs, store, 0.01)
    store.write_result(runs[0].run_id, {"config": runs[0].to_dict(), "training": {"seconds_per_step": 0.05}})
    line = estimate.describe(runs, store, None)
    assert "from the median of this store's finished runs" in line
    assert f"{0.05 / (8 / 64) * 1000:.1f} ms per step" in line
