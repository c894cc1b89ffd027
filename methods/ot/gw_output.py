"""What every GW solver shares: its common settings, and what a solve returns (a frozen
record, never a bare tuple)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from gmgbench.methods.ot.gw_problem import GWProblem

__all__ = ["GWOutput", "GWSettings", "finish"]


@dataclass(frozen=True)
class GWSettings:
    """Settings both backends take, with ott-jax's defaults; each solver adds its own.

    Args:
      epsilon: entropic regularisation (ott-jax's convention; POT's ε is twice this). A float,
        or a tensor of the batch shape. On the raw costs' scale, or, with ``relative_epsilon``,
        relative to the problem's scale ``mean(C_X)·mean(C_Y)``.
      relative_epsilon: read ``epsilon`` relative to the problem's cost scale (ott-jax's
        ``relative_epsilon``/``scale_cost``): ε0 = 0.01 means the same blur at any cost scale.
      threshold: relative change of the GW cost between linearisations that stops the outer
        loop (ott-jax's default 1e-3).
      min_iterations, max_iterations: outer-loop bounds (ott-jax's defaults 5 and 50).
      sinkhorn_threshold: L1 error of the marginals that stops a Sinkhorn solve.
      sinkhorn_max_iterations: Sinkhorn steps per linearisation, at most.
      marginal_tolerance: a coupling whose marginals are off by more than this (L1, both
        sides) is reported as not converged.
    """

    epsilon: float | torch.Tensor = 1e-2
    relative_epsilon: bool = False
    threshold: float = 1e-3
    min_iterations: int = 5
    max_iterations: int = 50
    sinkhorn_threshold: float = 1e-3
    sinkhorn_max_iterations: int = 2000
    marginal_tolerance: float = 1e-2


@dataclass(frozen=True)
class GWOutput:
    """Result of an entropic GW solve.

    Attributes:
      coupling: ``[n, m]`` (or ``[B, n, m]``), detached: the solvers run without autograd.
      cost: the paper's ½-convention quadratic cost ``E(coupling)`` on the raw costs, without
        the entropy term. Computed with the coupling held fixed, so it is differentiable with
        respect to the cost matrices by the envelope theorem when they require grad.
      converged: outer and inner loops met their thresholds and the marginals check passed
        (bool tensor, ``[]`` or ``[B]``).
      feasible: the coupling's marginals are within ``marginal_tolerance`` and its cost is
        finite, converged or not (``[]`` or ``[B]``): whether ``cost`` may be used.
      n_iters: outer (linearisation) iterations run.
      marginal_error: L1 error of the coupling's marginals (``[]`` or ``[B]``).
      costs: normalised-problem cost after each outer iteration, ``[n_iters]`` (``[n_iters, B]``
        when batched); the convergence trace.
      epsilon: the raw-scale ε the problem was solved with.
    """

    coupling: torch.Tensor
    cost: torch.Tensor
    converged: torch.Tensor
    feasible: torch.Tensor
    n_iters: int
    marginal_error: torch.Tensor
    costs: torch.Tensor
    epsilon: torch.Tensor

    def set(self, **kw) -> "GWOutput":
        return replace(self, **kw)


def finish(prob: GWProblem, coupling, trace, ok, n_outer, epsilon, tol) -> GWOutput:
    """Shared by both backends: the marginal check and the envelope-theorem cost, once."""
    coupling = coupling.detach()
    merr = prob.marginal_error(coupling)
    finite = torch.isfinite(coupling).flatten(-2).all(-1)
    cost = prob.cost(coupling)
    # A non-finite coupling has a NaN marginal error, so `merr <= tol` also rejects it.
    feasible = (merr <= tol) & torch.isfinite(cost.detach())
    return GWOutput(
        coupling=coupling,
        cost=cost,
        converged=ok & finite & (merr <= tol),
        feasible=feasible,
        n_iters=int(n_outer),
        marginal_error=merr,
        costs=trace,
        epsilon=epsilon.detach(),
    )
