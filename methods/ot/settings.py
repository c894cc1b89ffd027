"""The settings every GW solver takes (:class:`GWSettings`); each backend adds its own.

ε comes in one of two names, never both: ``epsilon`` on the raw costs' scale, or ``epsilon0``
relative to the problem's cost scale (``ε = ε0·mean(C_X)·mean(C_Y)``). ``epsilon0`` is the
GMG regulariser's ε0 under the same name all the way from the spec. Both follow ott-jax's
convention (POT's ε is twice ours, docs/gw.md); the backends translate where they call out.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gmgbench.methods.ot.gw_problem import GWProblem

__all__ = ["GWSettings"]


@dataclass(frozen=True)
class GWSettings:
    """Settings both backends take, with ott-jax's defaults; each solver adds its own.

    Args:
      epsilon: entropic regularisation on the raw costs' scale (ott-jax's convention; POT's ε
        is twice this). A float, or a tensor of the batch shape.
      epsilon0: entropic regularisation relative to the problem's cost scale
        ``mean(C_X)·mean(C_Y)`` (ε = ε0·mean(C_X)·mean(C_Y)): ε0 = 0.01 means the same blur at
        any cost scale (ott-jax: ε0 on geometries with ``scale_cost="mean"``, its
        ``relative_epsilon``/``scale_cost``). Give exactly one of ``epsilon`` and ``epsilon0``.
      threshold: relative change of the GW cost between linearisations that stops the outer
        loop (ott-jax's default 1e-3).
      min_iterations, max_iterations: outer-loop bounds (ott-jax's defaults 5 and 50).
      sinkhorn_threshold: L1 error of the marginals that stops a Sinkhorn solve.
      sinkhorn_max_iterations: Sinkhorn steps per linearisation, at most.
      marginal_tolerance: a coupling whose marginals are off by more than this (L1, both
        sides) is reported as not converged.
    """

    epsilon: float | torch.Tensor | None = None
    epsilon0: float | torch.Tensor | None = None
    threshold: float = 1e-3
    min_iterations: int = 5
    max_iterations: int = 50
    sinkhorn_threshold: float = 1e-3
    sinkhorn_max_iterations: int = 2000
    marginal_tolerance: float = 1e-2

    def __post_init__(self):
        if (self.epsilon is None) == (self.epsilon0 is None):
            raise ValueError(f"{type(self).__name__}: give exactly one of epsilon (raw cost scale) and epsilon0 "
                             f"(relative to mean(C_X)·mean(C_Y)), got epsilon={self.epsilon}, epsilon0={self.epsilon0}")

    @property
    def given_epsilon(self) -> float | torch.Tensor:
        """The ε as given (``epsilon`` or ``epsilon0``), for error messages."""
        return self.epsilon0 if self.epsilon is None else self.epsilon

    def absolute_epsilon(self, prob: GWProblem) -> torch.Tensor:
        """ε on ``prob``'s raw costs' scale, detached: ``epsilon`` itself, or
        ``epsilon0·mean(C_X)·mean(C_Y)``."""
        return prob.absolute_epsilon(epsilon=self.epsilon, epsilon0=self.epsilon0)
