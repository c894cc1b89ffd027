"""GMG: the Gromov-Monge gap of the encoder or decoder on the batch (Uscidda et al., ICLR 2025).

``GMG(T) = DST(T) − GW(r, T#r)``. On a batch: the cost matrices ``C_X``, ``C_Y`` of the
judged map (:mod:`methods.regularisers.map_pairs`), ``DST = (1/n²) Σ ½ (C_X − C_Y)²``, and
an entropic GW solve between ``(C_X, uniform)`` and ``(C_Y, uniform)`` with
``ε = ε0 · mean(C_X) · mean(C_Y)`` (not differentiated).

Estimator (``estimator``). The coupling that T itself induces (``I/n``) is feasible and its
quadratic cost is exactly DST, so the true GW ≤ DST. The entropic coupling is blurred and its
cost ``GW_ε`` can exceed DST (large ε0, or a map already near-optimal), so the plain
``DST − GW_ε`` can be negative. Our default, ``"clipped"``, uses the tighter of the two upper
bounds on GW: ``GMG = DST − min(GW_ε, DST) = max(DST − GW_ε, 0)``; it is never negative, is
a lower bound on the true gap, and is 0 with zero gradient where the entropic solve cannot
tell T from an optimal map. ``"plain"`` is ``DST − GW_ε`` as written in the paper.

Gradient (envelope theorem): the coupling is solved without autograd and held fixed; the
GW term is differentiated through ``C_X`` and ``C_Y`` at that coupling. A solve whose
coupling fails the marginal check contributes nothing that step (GW := DST, gap 0) and logs
``gw_failed = 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods import ot
from methods.base import ForwardPass, LossAndLogs, Regulariser
from methods.ot.gw_problem import GWProblem, distortion, quadratic_cost
from methods.regularisers.map_pairs import GeometricConfig, cost_matrices

__all__ = ["GromovMongeGap", "gmg_from_costs", "ESTIMATORS"]

ESTIMATORS = ("clipped", "plain")


def gmg_from_costs(cost_x: torch.Tensor, cost_y: torch.Tensor, epsilon0: float = 0.01, *,
                   backend: str = "torch", estimator: str = "clipped", **solver_kw) -> tuple[torch.Tensor, dict]:
    """GMG estimate from paired cost matrices ``[n, n]`` (row i of both is the same sample).

    Returns ``(gmg, parts)`` with ``parts`` = ``dst``, ``gw`` (tensors, differentiable) and
    ``output`` (the :class:`~methods.ot.GWOutput`).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}")
    dst = distortion(cost_x, cost_y)
    tiny = torch.finfo(cost_x.dtype).tiny
    # ε0 times the (clamped) means: exactly ε0 on the normalised problem the solvers see.
    eps = epsilon0 * cost_x.detach().mean().clamp_min(tiny) * cost_y.detach().mean().clamp_min(tiny)
    sol = ot.solver(backend, epsilon=eps, **solver_kw)(GWProblem(cost_x.detach(), cost_y.detach()))
    gw = quadratic_cost(cost_x, cost_y, sol.coupling)
    # The marginal check is one host sync per step; it guards against a broken float32
    # coupling (total mass far from 1) giving a meaningless, huge or negative gap.
    ok = bool(sol.marginal_error <= solver_kw.get("marginal_tolerance", 1e-2)) and bool(torch.isfinite(gw))
    if not ok:
        gw = dst
    gap = dst - torch.minimum(gw, dst) if estimator == "clipped" else dst - gw
    return gap, {"dst": dst, "gw": gw, "output": sol, "ok": ok}


class GromovMongeGap(Regulariser):
    name = "gmg"

    @dataclass(frozen=True)
    class Config(GeometricConfig):
        """GMG's settings; the shared ones are documented on :class:`GeometricConfig`.

        Args:
          epsilon0: ε0 in ε = ε0·mean(C_X)·mean(C_Y); in (0, 1]. Our default 0.01 (the
            paper's could not be read).
          backend: GW solver, ``"torch"`` (native, default) or ``"ott"`` (ott-jax).
          estimator: ``"clipped"`` (default, ≥ 0) or ``"plain"`` (see the module docstring).
          threshold: GW outer-loop threshold (relative change of the cost); ott-jax's default.
        """

        epsilon0: float = 0.01
        backend: str = "torch"
        estimator: str = "clipped"
        threshold: float = 1e-3

        def __post_init__(self):
            super().__post_init__()
            if not 0 < self.epsilon0 <= 1:
                raise ValueError(f"epsilon0 must be in (0, 1], got {self.epsilon0}")
            if self.backend not in ot.BACKENDS:
                raise ValueError(f"backend must be one of {', '.join(map(repr, ot.BACKENDS))}, got {self.backend!r}")
            if self.estimator not in ESTIMATORS:
                raise ValueError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {self.estimator!r}")
            if not 0 < self.threshold < 1:
                raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        cx, cy = cost_matrices(out, self.cfg)
        gap, parts = gmg_from_costs(cx, cy, self.cfg.epsilon0, backend=self.cfg.backend,
                                    estimator=self.cfg.estimator, threshold=self.cfg.threshold)
        sol = parts["output"]
        return gap, {
            "gmg": gap.item(),
            "dst": parts["dst"].item(),
            "gw_eps": parts["gw"].item(),
            "gw_iters": float(sol.n_iters),
            "gw_failed": 0.0 if parts["ok"] else 1.0,
        }
