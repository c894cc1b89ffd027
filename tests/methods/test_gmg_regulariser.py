"""The Gromov-Monge gap: sign, zeros, the permuted map, DST = GMG, and the regulariser API."""
from __future__ import annotations

import math
import os

for _k in ("PYTORCH", "JAX", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_k}", "1")

import numpy as np
import pytest
import torch

from gmgbench.methods import ot, registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.regularisers.gmg import ESTIMATORS, gmg_from_costs, gmg_logs

torch.set_num_threads(1)

EPS0_RANGE = (0.001, 0.01, 0.1, 1.0)  # the offered range is (0, 1]
# Tighter than training's defaults, where each GW_ε term is off by about
# sinkhorn_threshold·mean(C²) (the coupling's marginal error, docs/gw.md).
TIGHT = dict(threshold=1e-5, sinkhorn_threshold=1e-5, max_iterations=500, sinkhorn_max_iterations=100000)


def pts(seed, n=32, d=4):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def rotation(seed, d):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q


def gap(x, y, cost="l2sq", eps0=0.01, estimator="clipped", backend="torch", **kw):
    g, parts = gmg_from_costs(ot.pairwise_cost(x, cost), ot.pairwise_cost(y, cost), eps0,
                              backend=backend, estimator=estimator, **kw)
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


@pytest.mark.parametrize("cost", ot.COSTS)
def test_each_estimator_on_an_isometry_and_on_a_permuted_one(cost):
    # Isometry: true GMG = 0. Permuted isometry: true GW = 0, so true GMG = DST. At ε0 = 0.05
    # the plain estimate is off by the blur's cost (negative on the isometry); the debiased
    # one removes it.
    x = pts(3, n=16).double()
    iso = x @ rotation(4, 4).double()
    perm = iso[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    on_iso = {e: gap(x, iso, cost, eps0=0.05, estimator=e, **TIGHT)[0] for e in ESTIMATORS}
    assert on_iso["plain"] < 0 and on_iso["warm"] < 0
    assert abs(on_iso["debiased"]) < 1e-2 * abs(on_iso["plain"])
    assert on_iso["clipped"] == 0.0
    on_perm = {e: gap(x, perm, cost, eps0=0.05, estimator=e, **TIGHT) for e in ESTIMATORS}
    dst = on_perm["plain"][1]
    assert on_perm["debiased"][0] == pytest.approx(dst, rel=1e-3)
    assert 0 < on_perm["plain"][0] < on_perm["debiased"][0]
    assert on_perm["clipped"][0] == on_perm["plain"][0]
    if cost == "cos":
        # Started from the scrambled map's own coupling, this solve stays near it (docs/gw.md).
        assert on_perm["warm"][0] < 0.8 * dst


def test_warm_start_stays_at_the_maps_own_coupling_on_a_near_isometry():
    x = pts(5, n=24)
    y = x @ rotation(6, 4) + 0.02 * pts(7, n=24)
    prob = ot.GWProblem(ot.pairwise_cost(x, "l2sq"), ot.pairwise_cost(y, "l2sq"))
    out = ot.TorchGW(epsilon0=0.001)(prob, init=prob.identity_coupling())
    assert float((out.coupling.diagonal() * 24).min()) > 0.9


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


def test_plain_estimator_can_go_negative():
    x = pts(30, n=24)
    y = x + 0.05 * pts(31, n=24)
    g, dst, gw = gap(x, y, "l2sq", eps0=0.1, estimator="plain")
    assert g < 0 and gw > dst


def test_a_failed_solve_gives_zero_and_is_logged():
    x = pts(32, n=16)
    y = x[torch.randperm(16, generator=torch.Generator().manual_seed(0))]
    # A marginal tolerance no coupling meets stands for a broken float32 solve.
    for est in ESTIMATORS:
        g, parts = gmg_from_costs(ot.pairwise_cost(x, "cos"), ot.pairwise_cost(y, "cos"), 0.01,
                                  estimator=est, marginal_tolerance=0.0)
        assert float(g) == 0.0 and not parts["ok"]
        assert gmg_logs(g, parts)["gw_failed"] == 1.0


# -- gradients, against finite differences of POT's entropic GW value ------------------------

def pot_entropic_value(cx, cy, eps, init=None):
    """min_P E(P) + ε·KL(P ‖ abᵀ) with POT's solver on float64 numpy (POT's ε = 2ε: docs/gw.md).

    Not POT's `gw_dist` (E at the plan): the envelope theorem holds for the regularised value,
    whose derivative in the costs is E's at the fixed optimal plan."""
    import ot as pot

    c1, c2 = cx.double().numpy(), cy.double().numpy()
    n = len(c1)
    p = np.full(n, 1 / n)
    plan = pot.gromov.entropic_gromov_wasserstein(
        c1, c2, p, p, loss_fun="square_loss", epsilon=2 * eps, G0=init, max_iter=1000, tol=1e-8,
        solver="PGD", numItermax=5000, stopThr=1e-9)
    plan_t = torch.from_numpy(plan)
    kl = (plan_t * (plan_t * n * n).clamp_min(1e-300).log()).sum()
    return float(ot.quadratic_cost(cx.double(), cy.double(), plan_t) + eps * kl)


def _fd_check(estimator, x, y, eps0, cost="l2sq", entries=((0, 0), (5, 1))):
    y = y.clone().requires_grad_(True)
    cx = ot.pairwise_cost(x, cost)
    g, parts = gmg_from_costs(cx, ot.pairwise_cost(y, cost), eps0, estimator=estimator, threshold=1e-7,
                              sinkhorn_threshold=1e-7, min_iterations=20, max_iterations=500,
                              sinkhorn_max_iterations=100000)
    (grad,) = torch.autograd.grad(g, y)
    # ε is held fixed at the base point (the regulariser does not differentiate it).
    eps = float(parts["output"].epsilon)
    eye = np.eye(len(x)) / len(x)

    def reference(yy):
        cy = ot.pairwise_cost(yy, cost)
        value = float(ot.distortion(cx, cy)) - pot_entropic_value(cx, cy, eps, eye if estimator == "warm" else None)
        if estimator == "debiased":
            eps_xx, eps_yy = map(float, parts["self_output"].epsilon)
            value += 0.5 * (pot_entropic_value(cx, cx, eps_xx, eye) + pot_entropic_value(cy, cy, eps_yy, eye))
        return value

    # The value is stationary in the coupling, so solver tolerances enter it only to second order.
    h = 1e-4
    for i, j in entries:
        yp, ym = y.detach().clone(), y.detach().clone()
        yp[i, j] += h
        ym[i, j] -= h
        fd = (reference(yp) - reference(ym)) / (2 * h)
        assert float(grad[i, j]) == pytest.approx(fd, rel=1e-3, abs=1e-6), (estimator, i, j)


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["plain", "warm", "debiased"])
def test_gradient_matches_finite_differences_of_pots_entropic_value(estimator):
    x = pts(40, n=8, d=3).double()
    y = x[torch.arange(8).roll(1)] + 0.3 * pts(41, n=8, d=3).double()
    _fd_check(estimator, x, y, eps0=0.2)


def test_clipped_gradient_is_the_plain_one_where_positive_and_zero_where_clipped():
    x = pts(42, n=12, d=3).double()
    y_perm = (x[torch.arange(12).roll(1)]).requires_grad_(True)
    grads = {}
    for est in ("plain", "clipped"):
        g, _ = gmg_from_costs(ot.pairwise_cost(x, "l2sq"), ot.pairwise_cost(y_perm, "l2sq"), 0.01, estimator=est)
        assert float(g) > 0
        grads[est] = torch.autograd.grad(g, y_perm)[0]
    assert torch.equal(grads["plain"], grads["clipped"])
    y_near = (x + 0.05 * pts(43, n=12, d=3).double()).requires_grad_(True)
    g, _ = gmg_from_costs(ot.pairwise_cost(x, "l2sq"), ot.pairwise_cost(y_near, "l2sq"), 0.1, estimator="clipped")
    assert float(g) == 0.0
    (grad,) = torch.autograd.grad(g, y_near)
    assert float(grad.abs().max()) == 0.0


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
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    assert set(logs) == {"gmg", "dst", "gw_eps", "gw_iters", "gw_failed", "gw_lost"}
    assert all(isinstance(v, float) for v in logs.values())
    assert logs["gmg"] == pytest.approx(logs["dst"] - logs["gw_eps"], rel=1e-4, abs=1e-7)
    # The plain estimator's gradient is ∇DST − ∇GW_ε; it reaches the encoder on both sides.
    loss.backward()
    enc = sum(float(p.grad.abs().sum()) for p in model.encoder.parameters() if p.grad is not None)
    assert enc > 0


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_each_estimator_logs_the_values_its_terms_need(batch, estimator):
    model, x = batch
    out = model(x, generator=torch.Generator().manual_seed(1))
    _, logs = registry.build("gmg", "regulariser", {"estimator": estimator})(out)
    base = {"gmg", "dst", "gw_eps", "gw_iters", "gw_failed", "gw_lost"}
    assert set(logs) == (base | {"gw_eps_xx", "gw_eps_yy", "gw_iters_self"} if estimator == "debiased" else base)
    if estimator == "debiased":
        want = logs["dst"] - logs["gw_eps"] + 0.5 * (logs["gw_eps_xx"] + logs["gw_eps_yy"])
        assert logs["gmg"] == pytest.approx(want, rel=1e-4, abs=1e-7)


def test_decoder_side_judges_the_sample_by_default_and_the_encoder_the_mean(batch):
    model, x = batch
    out = model(x, generator=torch.Generator().manual_seed(3))
    for side in ("encoder", "decoder"):
        default = registry.build("gmg", "regulariser", {"side": side})(out)[1]["dst"]
        sample = registry.build("gmg", "regulariser", {"side": side, "use_mean": False})(out)[1]["dst"]
        mean = registry.build("gmg", "regulariser", {"side": side, "use_mean": True})(out)[1]["dst"]
        assert sample != mean
        assert default == (sample if side == "decoder" else mean)


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
    ({"estimator": "abs"}, "estimator must be one of 'plain', 'clipped', 'debiased', 'warm', 'consistent', got 'abs'"),
    ({"estimator": "debiased", "backend": "ott"}, "estimator 'debiased' needs backend 'torch'"),
    ({"estimator": "consistent", "backend": "ott"}, "estimator 'consistent' needs backend 'torch'"),
    ({"use_mean": "yes"}, "use_mean must be"),
    ({"lambda": 1.0}, "no parameter"),
])
def test_config_errors_name_the_field(params, match):
    with pytest.raises((ValueError, KeyError), match=match) as err:
        registry.build("gmg", "regulariser", params)
    assert "\n" not in str(err.value)


def test_defaults_are_the_documented_ones():
    defaults = registry.get("gmg", "regulariser").parameters()
    assert defaults == {"weight": 1.0, "cost": "cos", "side": "decoder", "use_mean": None,
                        "epsilon0": 0.01, "backend": "torch", "estimator": "plain", "threshold": 1e-3}
