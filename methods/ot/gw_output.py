"""What a GW solve returns, for every backend: a frozen record (:class:`GWOutput`), never a
bare tuple, and :func:`finish`, the marginal check and cost both backends end with. The
settings the solvers share are in :mod:`gmgbench.methods.ot.settings`."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from gmgbench.methods.ot.gw_problem import GWProblem

__all__ = ["GWOutput", "finish"]


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
