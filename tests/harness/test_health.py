"""Regulariser health: measured without changing the run, and summarised honestly."""
from __future__ import annotations

import pytest
import torch

from gmgbench.harness.health import HealthMonitor, health_state, is_inert, summarise_health, term_names
from gmgbench.harness.spec import load_spec
from gmgbench.harness.train import Interrupted, train_run


def _state(workdir):
    return torch.load(workdir / "model.pt", weights_only=True)["model"]


def _run(write_spec, tiny_spec, regulariser, **train):
    tiny_spec["methods"][0]["regularisers"] = [regulariser]
    tiny_spec["methods"][0]["params"]["beta"] = 1.0
    tiny_spec["train"].update(steps=5, checkpoint_every=5, log_every=1, **train)
    return load_spec(write_spec(tiny_spec, f"s{train.get('health_every', 'x')}.yaml")).runs()[0]


@pytest.mark.parametrize("regulariser", [
    {"name": "gmg", "params": {"cost": "cos", "side": "decoder", "use_mean": False, "weight": 10.0}},
    {"name": "dst", "params": {"cost": "l2sq", "side": "encoder", "weight": 1.0}},
    {"name": "hfs", "params": {"num_pairs": 5, "weight": 1.0}},  # draws random numbers
])
def test_measuring_health_leaves_the_run_bit_for_bit_unchanged(tmp_path, write_spec, tiny_spec, regulariser):
    off = _run(write_spec, tiny_spec, regulariser, health_every=0)
    on = _run(write_spec, tiny_spec, regulariser, health_every=1)  # measured at every step
    assert off.run_id == on.run_id  # health settings are no part of a run's identity
    a = train_run(off, tmp_path / "off", progress=False)
    b = train_run(on, tmp_path / "on", progress=False)
    sa, sb = _state(tmp_path / "off"), _state(tmp_path / "on")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["curve"] == b["curve"]
    name = regulariser["name"]
    assert "grad_share" not in a["health"]["terms"][name]
    gs = b["health"]["terms"][name]["grad_share"]
    assert gs["n"] == 5 and 0 < gs["median"] < 1
    assert b["health"]["terms"][name]["loss_ratio"] > 0


def test_health_survives_a_resume(tmp_path, write_spec, tiny_spec):
    run = _run(write_spec, tiny_spec, {"name": "dst", "params": {"cost": "cos", "weight": 5.0}}, health_every=2)
    straight = train_run(run, tmp_path / "a", progress=False)
    with pytest.raises(Interrupted):
        train_run(run, tmp_path / "b", progress=False, stop_after=3)
    resumed = train_run(run, tmp_path / "b", progress=False)
    assert straight["health"] == resumed["health"]
    assert straight["health"]["terms"]["dst"]["grad_share"]["n"] == 3  # steps 0, 2, 4


def test_share_splits_the_gradient_between_objective_and_term():
    """On a toy: base loss p·a, term p·b with weight w; share = |w b| / (|w b| + |a|)."""
    p = torch.nn.Parameter(torch.zeros(2))
    q = torch.nn.Parameter(torch.zeros(1))  # used by the objective only: not shared
    a, b, w = torch.tensor([3.0, 4.0]), torch.tensor([0.0, 1.0]), 5.0
    mon = HealthMonitor(["r"], [w], every=1)
    base = (p * a).sum() + 7 * q.sum()
    term = (p * b).sum()
    grads = mon.term_grads([term], [p, q])
    (base + w * term).backward()
    mon.record_grads(0, grads, [p, q])
    step, share, cos = mon.shares["r"][0]
    assert share == pytest.approx(5 / (5 + 5))
    assert cos == pytest.approx(4 / 5)


def test_a_constant_term_has_zero_share():
    p = torch.nn.Parameter(torch.ones(3))
    mon = HealthMonitor(["gmg"], [100.0], every=1)
    term = torch.zeros(())
    grads = mon.term_grads([term], [p])
    (p.sum() + 100.0 * term).backward()
    mon.record_grads(0, grads, [p])
    assert mon.shares["gmg"][0][1] == 0.0
    rec = mon.summary([{"gmg": 0.0, "gmg.gw_failed": 1.0}, {"gmg": 0.5, "gmg.gw_failed": 0.0}], ["gmg"])["terms"]["gmg"]
    assert rec["inert"] is True and rec["zero_windows"] == 0.5 and rec["gw_failed_rate"] == 0.5


def test_gw_lost_rate_and_negative_windows_come_from_the_logged_windows():
    """``gw_lost``: the plan's entropic objective above the map's own coupling's (the GMG
    regulariser logs it); ``negative_windows`` reads a plain estimate below 0 even in results
    from before that log (curve only)."""
    mon = HealthMonitor(["gmg"], [100.0], every=0)
    curve = [{"gmg": -0.1, "gmg.gw_lost": 1.0}, {"gmg": 0.2, "gmg.gw_lost": 0.5},
             {"gmg": -0.3, "gmg.gw_lost": 0.0}, {"gmg": 0.0, "gmg.gw_lost": 0.5}]
    rec = mon.summary(curve, ["gmg"])["terms"]["gmg"]
    assert rec["gw_lost_rate"] == pytest.approx(0.5) and rec["negative_windows"] == 0.5
    old = {"config": {"method": "m", "regularisers": [{"name": "gmg", "params": {"weight": 1.0}}]},
           "training": {"curve": [{"step": 1, "loss": 1.0, "gmg": -0.1}, {"step": 2, "loss": 1.0, "gmg": -0.2},
                                  {"step": 3, "loss": 1.0, "gmg": 0.1}, {"step": 4, "loss": 1.0, "gmg": -0.1}]}}
    row = summarise_health([old])[0]
    assert row["negative windows"] == "75.0%" and row["GW lost to own coupling"] == "-"
    # A health record written before negative_windows existed: status reads it from the curve.
    old["health"] = {"terms": {"gmg": {"grad_share": {"median": 0.1, "frac_below": 0.0, "n": 4}, "inert": False}}}
    row = summarise_health([old])[0]
    assert row["term"] == "gmg" and row["negative windows"] == "75.0%" and row["inert"] == 0


def test_inert_definition_is_more_than_half_the_measurements_below_one_percent():
    assert is_inert({"grad_share": {"frac_below": 0.6, "n": 10}}) is True
    assert is_inert({"grad_share": {"frac_below": 0.5, "n": 10}}) is False
    assert is_inert({}) is None


def test_old_results_are_health_unknown_not_healthy():
    old = {"config": {"method": "m", "regularisers": [{"name": "gmg", "params": {}}]}}
    assert health_state(old) == "unknown"
    assert health_state({"config": {"method": "b", "regularisers": []}}) == "none"
    rows = summarise_health([old])
    assert rows[0]["term"] == "gmg (curve only)" and rows[0]["inert"] == "unknown"
    assert rows[0]["grad share (median)"] == "-"
    old["training"] = {"curve": [{"step": 50, "loss": 10.0, "gmg": 0.0}, {"step": 100, "loss": 10.0, "gmg": 0.1}]}
    old["config"]["regularisers"][0]["params"] = {"weight": 100.0}
    row = summarise_health([old])[0]
    assert row["zero windows"] == "50.0%" and row["|λR|/|loss|"] == "0.5"  # mean of 0 and 100·0.1/10


def test_repeated_terms_get_unique_keys():
    assert term_names(["dst", "gmg", "dst"]) == ["dst", "gmg", "dst#2"]
