"""The Gromov-Monge gap: sign, zeros, the permuted map, DST = GMG, and the regulariser API."""
from __future__ import annotations

import math

import pytest
import torch

from methods import ot, registry
from methods.architectures import VAE
from methods.regularisers.gmg import gmg_from_costs

torch.set_num_threads(1)

EPS0_RANGE = (0.001, 0.01, 0.1, 1.0)  # the offered range is (0, 1]


def pts(seed, n=32, d=4):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def rotation(seed, d):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q


def gap(x, y, cost="l2sq", eps0=0.01, estimator="clipped", backend="torch"):
    g, parts = gmg_from_costs(ot.pairwise_cost(x, cost), ot.pairwise_cost(y, cost), eps0,
                              backend=backend, estimator=estimator)
    return float(g), float(parts["dst"]), float(parts["gw"])


@pytest.mark.parametrize("cost", ot.COSTS)
def test_zero_for_an_isometry_and_a_rotation(cost):
    x = pts(0)
    embed = torch.cat([x, torch.zeros(32, 3)], 1) @ rotation(1, 7)  # isometric embedding in R^7
    for y in (x @ rotation(2, 4), embed):
        g, dst, gw = gap(x, y, cost)
        assert abs(g) < 1e-5 and dst < 1e-5
        # The plain estimator is off only by the entropic blur's cost, which is small at ε0 = 0.01.
        g_plain, _, _ = gap(x, y, cost, estimator="plain")
        assert -1e-2 * float(ot.pairwise_cost(x, cost).pow(2).mean()) < g_plain <= 1e-5


@pytest.mark.parametrize("backend", ["torch", "ott"])
@pytest.mark.parametrize("cost", ["l2sq", "cos"])
def test_positive_for_a_permutation_scrambled_map_and_equal_to_dst(cost, backend):
    # y_i = R x_π(i): a distortion-free map from the batch onto its image exists (x_i ↦ R x_i),
    # so GW = 0 and GMG = DST > 0, while the scrambled map itself distorts.
    x = pts(3, n=24)
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(0))
    y = x[perm] @ rotation(4, 4)
    g, dst, gw = gap(x, y, cost, eps0=0.01, backend=backend)
    assert dst > 0.1 * float(ot.pairwise_cost(x, cost).pow(2).mean())
    assert g > 0
    assert g == pytest.approx(dst, rel=0.05)


@pytest.mark.parametrize("eps0", EPS0_RANGE)
def test_clipped_estimator_never_negative_over_the_offered_eps0_range(eps0):
    for seed in range(4):
        x = pts(10 + seed, n=24)
        # Near-optimal maps are where the plain estimator goes negative: a small perturbation.
        y = x @ rotation(seed, 4) + 0.05 * pts(20 + seed, n=24)
        for cost in ot.COSTS:
            g, dst, gw = gap(x, y, cost, eps0=eps0)
            assert g >= 0.0
            assert g <= dst + 1e-7


def test_plain_estimator_does_go_negative_which_is_why_clipped_is_the_default():
    x = pts(30, n=24)
    y = x + 0.05 * pts(31, n=24)
    g, dst, gw = gap(x, y, "l2sq", eps0=0.1, estimator="plain")
    assert g < 0 and gw > dst


def test_gradient_is_dst_minus_fixed_coupling_gw_and_matches_finite_differences():
    x = pts(40, n=12, d=3).double()
    perm = torch.arange(12).roll(1)
    y = (x[perm] + 0.1 * pts(41, n=12, d=3).double()).requires_grad_(True)
    cx = ot.pairwise_cost(x, "l2sq")
    # The coupling is held fixed, so a default-tolerance solve is enough for this check.
    g, parts = gmg_from_costs(cx, ot.pairwise_cost(y, "l2sq"), 0.01)
    assert float(g.detach()) > 0
    (grad,) = torch.autograd.grad(g, y)
    p = parts["output"].coupling
    h = 1e-6
    for i, j in [(0, 0), (5, 2)]:
        yp, ym = y.detach().clone(), y.detach().clone()
        yp[i, j] += h
        ym[i, j] -= h

        def fixed(yy):
            cy = ot.pairwise_cost(yy, "l2sq")
            return ot.distortion(cx, cy) - ot.quadratic_cost(cx, cy, p)
        fd = (fixed(yp) - fixed(ym)) / (2 * h)
        assert float(grad[i, j]) == pytest.approx(float(fd), rel=1e-4, abs=1e-8)


# -- the regulariser -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=4)
    x = (torch.rand(16, 1, 64, 64, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    return model, x


@pytest.mark.parametrize("side", ["encoder", "decoder"])
@pytest.mark.parametrize("cost", ot.COSTS)
def test_regulariser_builds_steps_and_sends_gradient_to_the_map(batch, side, cost):
    model, x = batch
    model.zero_grad()
    out = model(x, generator=torch.Generator().manual_seed(1))
    reg = registry.build("gmg", "regulariser", {"side": side, "cost": cost})
    loss, logs = reg(out)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach())) and float(loss.detach()) >= 0
    assert set(logs) >= {"gmg", "dst", "gw_eps", "gw_iters", "gw_failed"}
    assert all(isinstance(v, float) for v in logs.values())
    # DST always has a gradient; GMG's is zero where clipped, so check through DST + GMG.
    (loss + registry.build("dst", "regulariser", {"side": side, "cost": cost})(out)[0]).backward()
    enc = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    assert enc > 0


def test_backends_give_the_same_regulariser_value(batch):
    model, x = batch
    out = model(x, generator=torch.Generator().manual_seed(2))
    vals = [registry.build("gmg", "regulariser", {"backend": b, "side": "encoder", "cost": "scl2sq",
                                                   "estimator": "plain"})(out)[1]["gw_eps"]
            for b in ("torch", "ott")]
    assert vals[0] == pytest.approx(vals[1], rel=2e-2)


@pytest.mark.parametrize("params,match", [
    ({"cost": "l1"}, "cost must be one of"),
    ({"side": "both"}, "side must be one of"),
    ({"epsilon0": 0.0}, "epsilon0 must be in"),
    ({"backend": "pot"}, "backend must be one of"),
    ({"estimator": "abs"}, "estimator must be one of"),
    ({"lambda": 1.0}, "no parameter"),
])
def test_config_errors_name_the_field(params, match):
    with pytest.raises((ValueError, KeyError), match=match):
        registry.build("gmg", "regulariser", params)


def test_defaults_are_the_documented_ones():
    defaults = registry.get("gmg", "regulariser").parameters()
    assert defaults == {"weight": 1.0, "cost": "cos", "side": "decoder", "use_mean": True,
                        "epsilon0": 0.01, "backend": "torch", "estimator": "clipped", "threshold": 1e-3}
