"""GMG: the Gromov-Monge gap of the encoder or decoder on the batch (Uscidda et al., ICLR 2025).

``GMG(T) = DST(T) − GW(r, T#r)``. On a batch: the cost matrices ``C_X``, ``C_Y`` of the
judged map (:mod:`methods.regularisers.map_pairs`), ``DST = (1/n²) Σ ½ (C_X − C_Y)²``, and
an entropic GW solve between ``(C_X, uniform)`` and ``(C_Y, uniform)`` with ε0 relative to
the problem's cost scale (``ε = ε0·mean(C_X)·mean(C_Y)``, done in :mod:`methods.ot`).

Estimators (``estimator``; docs/gw.md compares them on known ground truth). ``GW_ε(X, Y)`` is
the quadratic cost of the entropic coupling. The map's own coupling ``I/n`` costs exactly DST,
so the true GW ≤ DST; ``GW_ε`` lands above it when the blur costs more than the map's
distortion, or when the non-convex solve, started from the product coupling, stops in a worse
local optimum. So:

- ``"plain"`` (default, the paper's formula): ``DST − GW_ε(X, Y)`` from the product coupling;
  may be negative.
- ``"clipped"``: ``max(plain, 0)``; 0 with zero gradient whenever the solve cannot beat the
  map's own coupling. An ablation, never the default.
- ``"debiased"``: ``DST − (GW_ε(X, Y) − ½GW_ε(X, X) − ½GW_ε(Y, Y))``, removing the entropic
  blur the way Sinkhorn divergences do; the two self-terms are one batched solve started from
  their own optimum, the identity coupling (torch backend).
- ``"warm"``: ``DST − GW_ε(X, Y)`` with the solve started from the map's own coupling ``I/n``
  (torch backend).

Gradient (envelope theorem): every coupling is solved without autograd and held fixed; each
``GW_ε`` term is differentiated through ``C_X`` and ``C_Y`` at its coupling (ε is not
differentiated). A solve whose coupling fails the solver's marginal check
(``GWOutput.feasible``) makes the whole estimate 0 that step and logs ``gw_failed = 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods import ot
from methods.base import ForwardPass, LossAndLogs, Regulariser
from methods.ot.gw_problem import GWProblem, distortion
from methods.regularisers.map_pairs import GeometricConfig, cost_matrices

__all__ = ["GromovMongeGap", "gmg_from_costs", "ESTIMATORS", "TORCH_ONLY"]

ESTIMATORS = ("plain", "clipped", "debiased", "warm")
TORCH_ONLY = ("debiased", "warm")  # they start a solve from a given coupling


def check_estimator(estimator: str, backend: str) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}")
    if estimator in TORCH_ONLY and backend != "torch":
        raise ValueError(f"estimator {estimator!r} needs backend 'torch' (it starts a solve from a given coupling), got {backend!r}")


def gmg_from_costs(cost_x: torch.Tensor, cost_y: torch.Tensor, epsilon0: float = 0.01, *,
                   backend: str = "torch", estimator: str = "plain", **solver_kw) -> tuple[torch.Tensor, dict]:
    """GMG estimate from paired cost matrices ``[n, n]`` (row i of both is the same sample).

    Returns ``(gmg, parts)``: ``dst``, ``gw`` (``GW_ε(X, Y)``; DST if a solve failed), and for
    ``debiased`` ``gw_xx``, ``gw_yy`` (tensors, differentiable); ``output`` (the cross solve's
    :class:`~methods.ot.GWOutput`), ``self_output`` (the self-terms' batched one, debiased only)
    and ``ok`` (every solve feasible).
    """
    check_estimator(estimator, backend)
    solve = ot.solver(backend, epsilon=epsilon0, relative_epsilon=True, **solver_kw)
    dst = distortion(cost_x, cost_y)
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
    if estimator == "clipped":
        return dst - torch.minimum(gw, dst), parts
    if estimator == "debiased" and ok:
        return dst - (gw - 0.5 * (parts["gw_xx"] + parts["gw_yy"])), parts
    return dst - gw, parts


def gmg_logs(gap: torch.Tensor, parts: dict) -> dict[str, float]:
    """The logged values (docs/gw.md lists them): always ``gmg``, ``dst``, ``gw_eps``,
    ``gw_iters``, ``gw_failed``; with the debiased estimator also ``gw_eps_xx``, ``gw_eps_yy``,
    ``gw_iters_self``."""
    logs = {
        "gmg": gap.item(),
        "dst": parts["dst"].item(),
        "gw_eps": parts["gw"].item(),
        "gw_iters": float(parts["output"].n_iters),
        "gw_failed": 0.0 if parts["ok"] else 1.0,
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
          estimator: ``"plain"`` (default), ``"clipped"``, ``"debiased"`` or ``"warm"`` (see
            the module docstring; the last two need the torch backend).
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
