"""Entropic GW: both backends against each other and against POT; the objective; gradients."""
from __future__ import annotations

import os

for _k in ("PYTORCH", "JAX", "TENSORFLOW", "CUPY"):
    os.environ.setdefault(f"POT_BACKEND_DISABLE_{_k}", "1")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gmgbench.methods import ot  # noqa: E402

torch.set_num_threads(1)

# 1e-5 is near float32's floor for an L1 marginal error over n = 24 entries.
TIGHT = dict(threshold=1e-6, sinkhorn_threshold=1e-5, min_iterations=5, max_iterations=200, sinkhorn_max_iterations=20000)


def points(seed: int, n: int, d: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def costs(seed: int, n: int, cost: str, dtype=torch.float32):
    x, y = points(seed, n, 6).to(dtype), points(seed + 100, n, 3).to(dtype)
    return ot.pairwise_cost(x, cost), ot.pairwise_cost(y, cost)


def brute_force_cost(cx, cy, p):
    diff = cx[:, None, :, None] - cy[None, :, None, :]  # [i, j, k, l]
    return 0.5 * (diff.pow(2) * p[:, :, None, None] * p[None, None, :, :]).sum()


def pot_cost(cx, cy, eps):
    import ot as pot

    c1, c2 = cx.double().numpy(), cy.double().numpy()
    m1, m2 = c1.mean(), c2.mean()
    p = np.full(len(c1), 1 / len(c1))
    q = np.full(len(c2), 1 / len(c2))
    # POT linearises with the true gradient 2·L⊗T, so its ε is twice ours; solved on the
    # same mean-normalised costs as ours for float stability.
    plan = pot.gromov.entropic_gromov_wasserstein(
        c1 / m1, c2 / m2, p, q, loss_fun="square_loss", epsilon=2 * float(eps) / (m1 * m2),
        max_iter=30, tol=1e-7, solver="PGD", numItermax=3000, stopThr=1e-7)
    return float(brute_force_cost(torch.from_numpy(c1), torch.from_numpy(c2), torch.from_numpy(plan)))


class TestCosts:
    def test_costs_are_symmetric_nonnegative_zero_diagonal(self):
        x = points(0, 12, 5)
        for name in ot.COSTS:
            c = ot.pairwise_cost(x, name)
            assert torch.allclose(c, c.T, atol=1e-6)
            assert (c >= 0).all() and (c.diagonal() == 0).all()

    def test_values(self):
        x = points(1, 7, 4)
        ref = ((x[:, None] - x[None]) ** 2).sum(-1)
        assert torch.allclose(ot.pairwise_cost(x, "l2sq"), ref, atol=1e-4)
        assert torch.allclose(ot.pairwise_cost(x, "scl2sq"), ref / ref.mean(), atol=1e-5)
        cos = torch.nn.functional.cosine_similarity(x[:, None], x[None], dim=-1)
        want = (1 - cos).fill_diagonal_(0)
        assert torch.allclose(ot.pairwise_cost(x, "cos"), want, atol=1e-5)
        assert torch.allclose(ot.pairwise_cost(3 * x, "scl2sq"), ot.pairwise_cost(x, "scl2sq"), atol=1e-5)

    def test_bad_cost_name(self):
        with pytest.raises(ValueError, match="cost must be one of"):
            ot.pairwise_cost(points(0, 3, 2), "l1")


class TestProblem:
    def test_quadratic_cost_matches_brute_force(self):
        cx, cy = costs(0, 9, "l2sq", torch.float64)
        p = torch.rand(9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        p /= p.sum()
        assert torch.allclose(ot.quadratic_cost(cx, cy, p), brute_force_cost(cx, cy, p), rtol=1e-10)

    def test_distortion_is_the_cost_of_the_identity_coupling(self):
        cx, cy = costs(1, 8, "cos", torch.float64)
        eye = torch.eye(8, dtype=torch.float64) / 8
        assert torch.allclose(ot.distortion(cx, cy), brute_force_cost(cx, cy, eye), rtol=1e-10)

    def test_bad_shapes_are_named(self):
        with pytest.raises(ValueError, match="cost_y must be a square"):
            ot.GWProblem(torch.zeros(3, 3), torch.zeros(3, 4))
        with pytest.raises(ValueError, match="same batch shape"):
            ot.GWProblem(torch.zeros(2, 3, 3), torch.zeros(3, 3))
        with pytest.raises(ValueError, match="backend must be one of"):
            ot.solve_gw(torch.zeros(3, 3), torch.zeros(3, 3), 0.1, backend="pot")


@pytest.mark.parametrize("backend", ["torch", "ott"])
class TestSolvers:
    def test_marginals_and_cost_recomputed(self, backend):
        cx, cy = costs(2, 16, "l2sq")
        out = ot.solve_gw(cx, cy, 0.05 * cx.mean() * cy.mean(), backend=backend)
        assert bool(out.converged)
        n = 16
        assert torch.allclose(out.coupling.sum(1), torch.full((n,), 1 / n), atol=2e-3)
        assert torch.allclose(out.coupling.sum(0), torch.full((n,), 1 / n), atol=2e-3)
        assert torch.allclose(out.cost, brute_force_cost(cx.double(), cy.double(), out.coupling.double()).float(), rtol=1e-4)
        assert out.n_iters >= 5 and out.costs.shape == (out.n_iters,)

    def test_tiny_costs_give_the_same_coupling(self, backend):
        # A collapsed decoder gives costs of ~1e-6; the solve is scale-free in ε0 units.
        cx, cy = costs(3, 16, "l2sq")
        big = ot.solve_gw(cx, cy, 0.05 * cx.mean() * cy.mean(), backend=backend)
        small = ot.solve_gw(cx * 1e-6, cy * 1e-7, 0.05 * cx.mean() * cy.mean() * 1e-13, backend=backend)
        assert bool(small.converged) and float(small.marginal_error) < 1e-2
        assert torch.allclose(small.coupling, big.coupling, atol=1e-5)

    def test_batched_equals_one_by_one(self, backend):
        pairs = [costs(s, 12, "cos") for s in range(3)]
        cx = torch.stack([p[0] for p in pairs])
        cy = torch.stack([p[1] for p in pairs])
        eps = 0.05 * cx.mean((1, 2)) * cy.mean((1, 2))
        batched = ot.solve_gw(cx, cy, eps, backend=backend, **TIGHT)
        for i in range(3):
            single = ot.solve_gw(cx[i], cy[i], eps[i], backend=backend, **TIGHT)
            assert torch.allclose(batched.cost[i], single.cost, rtol=1e-3)
        assert batched.coupling.shape == (3, 12, 12) and batched.converged.shape == (3,)

    def test_float64_in_float64_out(self, backend):
        # ott-jax computes in float32 unless jax_enable_x64; the caller still gets its dtype.
        cx, cy = costs(4, 12, "l2sq", torch.float64)
        out = ot.solve_gw(cx, cy, 0.05 * cx.mean() * cy.mean(), backend=backend)
        assert out.coupling.dtype == out.cost.dtype == torch.float64 and bool(out.converged)
        ref = ot.solve_gw(cx.float(), cy.float(), 0.05 * cx.float().mean() * cy.float().mean(), backend=backend)
        assert float(out.cost) == pytest.approx(float(ref.cost), rel=1e-3)


@pytest.mark.parametrize("cost,eps0,seed", [("l2sq", 0.05, 0), ("l2sq", 0.01, 1), ("cos", 0.05, 2), ("cos", 0.02, 3)])
def test_backends_agree_with_each_other_and_with_pot(cost, eps0, seed):
    cx, cy = costs(seed, 24, cost)
    eps = eps0 * cx.mean() * cy.mean()
    c_torch = float(ot.solve_gw(cx, cy, eps, backend="torch", **TIGHT).cost)
    c_ott = float(ot.solve_gw(cx, cy, eps, backend="ott", **TIGHT).cost)
    c_pot = pot_cost(cx, cy, eps)
    assert c_torch == pytest.approx(c_ott, rel=1e-3)
    assert c_torch == pytest.approx(c_pot, rel=1e-3)
    assert c_ott == pytest.approx(c_pot, rel=1e-3)


def test_pot_at_equal_epsilon_is_a_different_problem():
    # Guards the factor 2: with POT's ε equal to ours the costs differ clearly.
    import ot as pot

    cx, cy = costs(0, 24, "l2sq", torch.float64)
    cx, cy = cx / cx.mean(), cy / cy.mean()
    p = np.full(24, 1 / 24)
    plan = pot.gromov.entropic_gromov_wasserstein(cx.numpy(), cy.numpy(), p, p, loss_fun="square_loss",
                                                  epsilon=0.05, max_iter=30, tol=1e-7, solver="PGD",
                                                  numItermax=3000, stopThr=1e-7)
    ours = float(ot.solve_gw(cx, cy, 0.05, **TIGHT).cost)
    same_eps = float(brute_force_cost(cx, cy, torch.from_numpy(plan)))
    assert abs(same_eps - ours) / ours > 0.01


def test_ott_does_not_recompile_when_epsilon_changes():
    from gmgbench.methods.ot import ott_gw

    cx, cy = costs(4, 20, "l2sq")
    ot.solve_gw(cx, cy, 0.03, backend="ott")
    before = ott_gw.trace_count()
    for eps in (0.01, 0.02, 0.05, 0.1):
        ot.solve_gw(cx * (1 + eps), cy, eps * cx.mean() * cy.mean(), backend="ott")
    assert ott_gw.trace_count() == before


def test_torch_tensors_cross_to_jax_without_a_copy():
    # The ott backend hands its cost matrices to JAX by DLPack; a copy here would cost a
    # memcpy per solve on CPU and a device round trip on a GPU.
    from gmgbench.methods.ot.ott_gw import _to_jax

    t = torch.rand(64, 64)
    arr = _to_jax(t)
    assert arr.unsafe_buffer_pointer() == t.data_ptr()
    back = torch.from_dlpack(arr)
    assert back.data_ptr() == t.data_ptr() and torch.equal(back, t)


def _entropic_value(cx, cy, eps):
    out = ot.solve_gw(cx, cy, eps, backend="torch", threshold=1e-10, sinkhorn_threshold=1e-10,
                      min_iterations=10, max_iterations=200, sinkhorn_max_iterations=20000)
    p = out.coupling
    n, m = p.shape
    kl = (p * (p * n * m).clamp_min(1e-300).log()).sum()
    return out.cost.detach() + eps * kl


def test_envelope_gradient_matches_finite_differences_of_the_entropic_value():
    # d/dy [E(P*) + ε KL(P*)] (ε fixed) = ∂E/∂y at the fixed coupling P*: the envelope theorem.
    x, y = points(5, 10, 3).double(), points(6, 10, 2).double().requires_grad_(True)
    cx = ot.pairwise_cost(x, "l2sq")
    eps = 0.2 * float(cx.mean()) * float(ot.pairwise_cost(y.detach(), "l2sq").mean())
    out = ot.solve_gw(cx, ot.pairwise_cost(y, "l2sq"), eps, threshold=1e-10, sinkhorn_threshold=1e-10,
                      min_iterations=10, max_iterations=200, sinkhorn_max_iterations=20000)
    (grad,) = torch.autograd.grad(out.cost, y)
    h = 1e-5
    for i, j in [(0, 0), (7, 1)]:
        yp, ym = y.detach().clone(), y.detach().clone()
        yp[i, j] += h
        ym[i, j] -= h
        fd = (_entropic_value(cx, ot.pairwise_cost(yp, "l2sq"), eps)
              - _entropic_value(cx, ot.pairwise_cost(ym, "l2sq"), eps)) / (2 * h)
        assert float(grad[i, j]) == pytest.approx(float(fd), rel=1e-3, abs=1e-6)


def test_fixed_coupling_gradient_matches_finite_differences():
    x = points(7, 8, 3).double().requires_grad_(True)
    y = points(8, 8, 2).double()
    p = torch.rand(8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    p /= p.sum()
    f = lambda xx: ot.quadratic_cost(ot.pairwise_cost(xx, "cos"), ot.pairwise_cost(y, "cos"), p)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))


def test_small_epsilon_goes_through_absorption_and_still_agrees_with_ott():
    # ε0 = 1e-3 makes the scalings outgrow e^±10 many times (absorbed into the potentials).
    x, y = points(9, 64, 8), points(10, 64, 3)
    cx, cy = ot.pairwise_cost(x, "l2sq"), ot.pairwise_cost(y, "l2sq")
    eps = 1e-3 * cx.mean() * cy.mean()
    t, o = ot.solve_gw(cx, cy, eps, backend="torch"), ot.solve_gw(cx, cy, eps, backend="ott")
    assert bool(t.converged) and float(t.marginal_error) < 2e-3
    assert float(t.cost) == pytest.approx(float(o.cost), rel=1e-2)


# -- relative ε, start couplings, feasibility (methods/ot owns them) -------------------------

@pytest.mark.parametrize("backend", ["torch", "ott"])
def test_epsilon0_is_relative_to_the_problems_cost_scale(backend):
    cx, cy = costs(11, 16, "cos")
    rel = ot.solve_gw(cx, cy, epsilon0=0.05, backend=backend)
    absolute = ot.solve_gw(cx, cy, 0.05 * cx.mean() * cy.mean(), backend=backend)
    assert torch.equal(rel.coupling, absolute.coupling)
    assert float(rel.epsilon) == pytest.approx(0.05 * float(cx.mean()) * float(cy.mean()), rel=1e-6)
    # Scale-free: the same ε0 on costs 1e3 times larger gives the same coupling.
    big = ot.solve_gw(cx * 1e3, cy, epsilon0=0.05, backend=backend)
    assert torch.allclose(big.coupling, rel.coupling, atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "ott"])
def test_a_solver_takes_exactly_one_of_epsilon_and_epsilon0(backend):
    # Either name alone is a complete setting; both (which one wins?) or neither (no default ε
    # is right at every cost scale) is refused when the solver is built, not at its first solve.
    for kw in ({}, {"epsilon": 0.01, "epsilon0": 0.01}):
        with pytest.raises(ValueError, match="exactly one of epsilon .* and epsilon0"):
            ot.solver(backend, **kw)
    assert ot.solver(backend, epsilon0=0.01).epsilon is None
    assert ot.solver(backend, epsilon=0.01).epsilon0 is None
    with pytest.raises(ValueError, match="exactly one"):
        ot.solve_gw(*costs(5, 5, "cos"), 0.01, epsilon0=0.01, backend=backend)


def test_a_start_coupling_is_used_and_checked():
    cx, cy = costs(12, 12, "l2sq")
    prob = ot.GWProblem(cx, cy)
    eye = prob.identity_coupling()
    assert torch.allclose(eye.sum(0), prob.b) and float(ot.distortion(cx, cy)) == pytest.approx(float(prob.cost(eye)), rel=1e-5)
    solver = ot.TorchGW(epsilon0=0.01)
    from_eye, from_product = solver(prob, init=eye), solver(prob)
    assert not torch.equal(from_eye.coupling, from_product.coupling)
    with pytest.raises(ValueError, match="init must be a coupling of shape"):
        solver(prob, init=eye[:5])
    with pytest.raises(ValueError, match="torch backend only"):
        ot.OttGW(epsilon=0.01)(prob, init=eye)
    with pytest.raises(ValueError, match="identity coupling needs a square problem"):
        ot.GWProblem(cx, cy[:6, :6]).identity_coupling()


def test_feasible_is_the_marginal_check_and_converged_also_needs_the_loops():
    cx, cy = costs(13, 12, "cos")
    capped = ot.solve_gw(cx, cy, epsilon0=0.01, max_iterations=1, min_iterations=1, threshold=1e-12)
    assert bool(capped.feasible) and not bool(capped.converged)
    broken = ot.solve_gw(cx, cy, epsilon0=0.01, marginal_tolerance=0.0)
    assert not bool(broken.feasible) and not bool(broken.converged)


def test_the_gw_cost_is_computed_once_per_gmg_step(monkeypatch):
    # The solver's envelope cost is the one the regulariser differentiates: no second
    # quadratic_cost in the regulariser (issue 16).
    from gmgbench.methods.ot import gw_problem
    from gmgbench.methods.regularisers.gmg import gmg_from_costs

    calls = []
    real = gw_problem.quadratic_cost
    monkeypatch.setattr(gw_problem, "quadratic_cost", lambda *a: calls.append(1) or real(*a))
    x = points(14, 12, 3).requires_grad_(True)
    gap, parts = gmg_from_costs(ot.pairwise_cost(x, "cos"), ot.pairwise_cost(points(15, 12, 3), "cos"), 0.01)
    assert len(calls) == 1 and parts["gw"] is parts["output"].cost
    (grad,) = torch.autograd.grad(gap, x)
    assert float(grad.abs().sum()) > 0
