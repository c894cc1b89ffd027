"""GMG: the Gromov-Monge gap of the encoder or decoder on the batch (Uscidda et al., ICLR 2025).

``GMG(T) = DST(T) − GW(r, T#r)``. On a batch: the cost matrices ``C_X``, ``C_Y`` of the
judged map (:mod:`gmgbench.methods.regularisers.geometric`), ``DST = (1/n²) Σ ½ (C_X − C_Y)²``, and
an entropic GW solve between ``(C_X, uniform)`` and ``(C_Y, uniform)`` with ε0 relative to
the problem's cost scale (``ε = ε0·mean(C_X)·mean(C_Y)``, done in :mod:`gmgbench.methods.ot`).

Which quantity each estimator estimates (docs/gw.md measures them on training batches).
``E(P) = ½ Σ (C_X − C_Y)² P P`` is a coupling's transport cost, ``F_ε(P) = E(P) + ε·KL(P ‖ abᵀ)``
its entropic objective. The map's own coupling ``P_T = I/n`` has ``E(P_T) = DST`` and
``F_ε(P_T) = DST + ε·log n``, so the finite-sample gap ``DST − min_P E(P)`` is ≥ 0, and so is
the entropic gap ``F_ε(P_T) − min_P F_ε(P)``. ``GW_ε(X, Y)`` below is ``E`` of the solved plan.

- ``"plain"`` (default, the paper's formula ``DST − GW_ε``): the transport cost of the entropic
  plan solved from the product coupling, subtracted from DST. It estimates neither gap: the
  blurred plan's transport cost exceeds DST even when the map is optimal, and the local solve
  can stop above the map's own coupling; it is negative in most training steps (docs/gw.md).
- ``"clipped"``: ``max(plain, 0)``; 0 with zero gradient whenever the solve cannot beat the
  map's own coupling. An ablation, never the default.
- ``"debiased"``: ``DST − (GW_ε(X, Y) − ½GW_ε(X, X) − ½GW_ε(Y, Y))``, removing the entropic
  blur the way Sinkhorn divergences do; the two self-terms are one batched solve started from
  their own optimum, the identity coupling (torch backend). Exact on permuted isometries.
- ``"warm"``: ``DST − GW_ε(X, Y)`` with the solve started from the map's own coupling ``I/n``
  (torch backend).
- ``"consistent"``: the entropic gap ``F_ε(P_T) − min(F_ε(P_T), F_ε(P_prod), F_ε(P_own))``,
  where ``P_prod`` and ``P_own`` are the entropic solves started from the product coupling and
  from ``P_T`` (one batched solve, torch backend). Its candidates are compared like with like
  (entropic objective against entropic objective), so it is ≥ 0 by construction and 0 exactly
  when neither solve beats the map's own coupling; it is a lower bound of the entropic gap
  (local solves), not of the finite-sample one (it includes ε·(log n − KL(P*)) of blur).

Gradient (envelope theorem): every coupling is solved without autograd and held fixed; each
``GW_ε`` term is differentiated through ``C_X`` and ``C_Y`` at its coupling (ε and the KL
term are not differentiated), so ``consistent``'s gradient is ``∇DST − ∇E(P*)`` at the plan
``P*`` it used (``plain``'s formula at a better plan), and exactly 0 when ``P_T`` won. A solve
whose coupling fails the solver's marginal check (``GWOutput.feasible``) makes the whole
estimate 0 that step and logs ``gw_failed = 1``. Every estimator logs ``gw_lost``: 1 when the
plan it used has a higher entropic objective than the map's own coupling (health records the
fraction of such steps).
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import torch

from gmgbench.methods import ot
from gmgbench.methods.base import ForwardPass, LossAndLogs, Regulariser
from gmgbench.methods.ot.gw_problem import GWProblem, distortion
from gmgbench.methods.regularisers.geometric import GeometricConfig, cost_matrices

__all__ = ["GromovMongeGap", "gmg_from_costs", "kl_to_product", "ESTIMATORS", "TORCH_ONLY"]

ESTIMATORS = ("plain", "clipped", "debiased", "warm", "consistent")
TORCH_ONLY = ("debiased", "warm", "consistent")  # they start a solve from a given coupling


def check_estimator(estimator: str, backend: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}")
    if estimator in TORCH_ONLY and backend != "torch":
        raise ValueError(f"estimator {estimator!r} needs backend 'torch' (it starts a solve from a given coupling), got {backend!r}")


def gmg_from_costs(cost_x: torch.Tensor, cost_y: torch.Tensor, epsilon0: float = 0.01, *,
                   backend: str = "torch", estimator: str = "plain", **solver_kw) -> tuple[torch.Tensor, dict]:
    """GMG estimate from paired cost matrices ``[n, n]`` (row i of both is the same sample).

    Returns ``(gmg, parts)``: ``dst``, ``gw`` (``GW_ε(X, Y)``, the transport cost of the plan
    used; DST if a solve failed or the map's own coupling won), and for ``debiased``
    ``gw_xx``, ``gw_yy`` (tensors, differentiable); ``output`` (the cross solve's
    :class:`~gmgbench.methods.ot.GWOutput`; for ``consistent`` the batched two-start one),
    ``self_output`` (the self-terms' batched one, debiased only), ``ok`` (every solve
    feasible; for ``consistent`` at least one), ``lost`` (the plan used has a higher entropic
    objective than the map's own coupling) and, for ``consistent``, ``start`` (``"product"``,
    ``"own"``, or ``"map"`` when the map's own coupling won).
    """
    check_estimator(estimator, backend)
    solve = ot.solver(backend, epsilon0=epsilon0, **solver_kw)
    dst = distortion(cost_x, cost_y)
    if estimator == "consistent":
        return _consistent(cost_x, cost_y, dst, solve)
    prob = GWProblem(cost_x, cost_y)
    sol = solve(prob, init=prob.identity_coupling() if estimator == "warm" else None)
    parts = {"dst": dst, "output": sol}
    ok = bool(sol.feasible)
    if estimator == "debiased":
        both = torch.stack([cost_x, cost_y])
        selves = GWProblem(both, both)
        parts["self_output"] = self_sol = solve(selves, init=selves.identity_coupling())
        parts["gw_xx"], parts["gw_yy"] = self_sol.cost.unbind()
        ok = ok and bool(self_sol.feasible.all())
    # A failed solve says nothing about the map: GW := DST, so the estimate is 0 this step.
    parts["gw"] = gw = sol.cost if ok else dst
    parts["ok"] = ok
    parts["lost"] = ok and bool(_entropic(sol.cost, sol.coupling, sol.epsilon) > _own_entropic(dst, sol.epsilon, prob))
    if estimator == "clipped":
        return dst - torch.minimum(gw, dst), parts
    if estimator == "debiased" and ok:
        return dst - (gw - 0.5 * (parts["gw_xx"] + parts["gw_yy"])), parts
    return dst - gw, parts


def kl_to_product(coupling: torch.Tensor) -> torch.Tensor:
    """``KL(P ‖ a bᵀ) = Σ P log(P·n·m)`` for uniform marginals (``0 log 0 = 0``); scalar or ``[B]``.

    The entropic term of the GW objective: the map's own coupling ``I/n`` has the largest
    value a coupling can have, ``log n``. Detached: ε·KL does not depend on the costs, so it
    carries no gradient (the envelope theorem differentiates ``E`` only). Kept here, not in
    :mod:`gmgbench.methods.ot`, so that DST's code (which imports that package) stays unchanged."""
    p = coupling.detach()
    n, m = p.shape[-2], p.shape[-1]
    return torch.where(p > 0, p * (p * (n * m)).clamp_min(torch.finfo(p.dtype).tiny).log(), torch.zeros_like(p)).sum((-1, -2))


def _entropic(cost: torch.Tensor, coupling: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``F_ε(P) = E(P) + ε·KL(P ‖ abᵀ)``, detached (only compared)."""
    return cost.detach() + eps * kl_to_product(coupling)


def _own_entropic(dst: torch.Tensor, eps: torch.Tensor, prob: GWProblem) -> torch.Tensor:
    """``F_ε(I/n) = DST + ε·log n``: ``KL(I/n ‖ abᵀ) = log n``."""
    return dst.detach() + eps * math.log(prob.shape[0])


def _consistent(cost_x, cost_y, dst, solve) -> tuple[torch.Tensor, dict]:
    """The ``consistent`` estimator: two starts in one batched solve, the best plan by its
    entropic objective, the map's own coupling among the candidates."""
    n = cost_x.shape[-1]
    prob = GWProblem(cost_x, cost_y)
    both = GWProblem(torch.stack([cost_x.detach(), cost_x.detach()]), torch.stack([cost_y.detach(), cost_y.detach()]))
    init = torch.stack([torch.full((n, n), 1.0 / (n * n), dtype=cost_x.dtype, device=cost_x.device),
                        prob.identity_coupling()])
    sol = solve(both, init=init)
    eps = sol.epsilon.reshape(-1)[0]
    objective = _entropic(sol.cost, sol.coupling, eps)
    objective = torch.where(sol.feasible, objective, torch.full_like(objective, math.inf))
    own = _own_entropic(dst, eps, prob)
    best = int(objective.argmin())
    ok = bool(sol.feasible.any())
    parts = {"dst": dst, "output": sol, "ok": ok}
    if not ok or not bool(objective[best] < own):
        # The map's own coupling is at least as good as any plan found (or no solve could be
        # used): the gap is 0 with zero gradient, never a value the solver made negative.
        parts.update(gw=dst, lost=ok, start="map" if ok else "none")
        return dst - dst, parts
    # Differentiable transport cost at the chosen plan, on the caller's (grad-carrying) costs.
    gw = prob.cost(sol.coupling[best])
    parts.update(gw=gw, lost=False, start=("product", "own")[best])
    return (dst - gw) + (own - objective[best]) - (dst.detach() - gw.detach()), parts


def gmg_logs(gap: torch.Tensor, parts: dict) -> dict[str, float]:
    """The logged values (docs/gw.md lists them): always ``gmg``, ``dst``, ``gw_eps``,
    ``gw_iters``, ``gw_failed``, ``gw_lost``; with the debiased estimator also ``gw_eps_xx``, ``gw_eps_yy``,
    ``gw_iters_self``."""
    logs = {
        "gmg": gap.item(),
        "dst": parts["dst"].item(),
        "gw_eps": parts["gw"].item(),
        "gw_iters": float(parts["output"].n_iters),
        "gw_failed": 0.0 if parts["ok"] else 1.0,
        "gw_lost": 1.0 if parts["lost"] else 0.0,
    }
    if "self_output" in parts:
        logs.update(gw_eps_xx=parts["gw_xx"].item(), gw_eps_yy=parts["gw_yy"].item(),
                    gw_iters_self=float(parts["self_output"].n_iters))
    return logs


class GromovMongeGap(Regulariser):
    name = "gmg"

    @dataclass(frozen=True)
    class Config(GeometricConfig):
        """GMG's settings; the shared ones are documented on :class:`GeometricConfig`.

        Args:
          epsilon0: ε0, relative to the batch's cost scale (ε = ε0·mean(C_X)·mean(C_Y));
            in (0, 1]. Our default 0.01 (the paper's could not be read).
          backend: GW solver, ``"torch"`` (native, default) or ``"ott"`` (ott-jax).
          estimator: ``"plain"`` (default, the paper's formula), ``"clipped"``, ``"debiased"``,
            ``"warm"`` or ``"consistent"`` (see the module docstring; the last three need the
            torch backend).
          threshold: GW outer-loop threshold (relative change of the cost); ott-jax's default.
        """

        epsilon0: float = 0.01
        backend: str = "torch"
        estimator: str = "plain"
        threshold: float = 1e-3

        def __post_init__(self):
            super().__post_init__()
            if not 0 < self.epsilon0 <= 1:
                raise ValueError(f"epsilon0 must be in (0, 1], got {self.epsilon0}")
            if self.backend not in ot.BACKENDS:
                raise ValueError(f"backend must be one of {', '.join(map(repr, ot.BACKENDS))}, got {self.backend!r}")
            check_estimator(self.estimator, self.backend)
            if not 0 < self.threshold < 1:
                raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        cx, cy = cost_matrices(out, self.cfg)
        gap, parts = gmg_from_costs(cx, cy, self.cfg.epsilon0, backend=self.cfg.backend,
                                    estimator=self.cfg.estimator, threshold=self.cfg.threshold)
        return gap, gmg_logs(gap, parts)
