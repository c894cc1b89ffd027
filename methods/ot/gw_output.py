"""What a GW solve returns: a frozen record, never a bare tuple."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

__all__ = ["GWOutput"]


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
      n_iters: outer (linearisation) iterations run.
      marginal_error: L1 error of the coupling's marginals (``[]`` or ``[B]``).
      costs: normalised-problem cost after each outer iteration, ``[n_iters]`` (``[n_iters, B]``
        when batched); the convergence trace.
      epsilon: the raw-scale ε the problem was solved with.
    """

    coupling: torch.Tensor
    cost: torch.Tensor
    converged: torch.Tensor
    n_iters: int
    marginal_error: torch.Tensor
    costs: torch.Tensor
    epsilon: torch.Tensor

    def set(self, **kw) -> "GWOutput":
        return replace(self, **kw)
