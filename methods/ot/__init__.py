"""Entropic Gromov-Wasserstein between two cost matrices, in ott-jax's shape.

Objects: :class:`GWProblem` (two cost matrices, uniform marginals), a solver
(:class:`TorchGW` native torch, or :class:`OttGW` the ott-jax reference) called on a problem,
with the settings of :class:`GWSettings` (ε as ``epsilon`` on the raw costs' scale, or as
``epsilon0`` relative to their scale, the name GMG's ε0 keeps from the spec), and a frozen
:class:`GWOutput` (``.coupling``, ``.cost``, ``.converged``, ``.n_iters``).
:func:`solve_gw` wires them for one call; :func:`pairwise_cost` builds the cost matrices.
Conventions (½ in the objective, ott's ε = POT's ε / 2) are in docs/gw.md.
"""
from __future__ import annotations

import torch

from gmgbench.methods.ot.costs import COSTS, pairwise_cost
from gmgbench.methods.ot.gw_output import GWOutput
from gmgbench.methods.ot.gw_problem import GWProblem, distortion, quadratic_cost
from gmgbench.methods.ot.settings import GWSettings
from gmgbench.methods.ot.torch_gw import TorchGW

__all__ = [
    "BACKENDS", "COSTS", "GWOutput", "GWProblem", "GWSettings", "OttGW", "TorchGW",
    "distortion", "pairwise_cost", "quadratic_cost", "solver", "solve_gw",
]

BACKENDS = ("torch", "ott")


def __getattr__(name):
    # ott-jax (and jax) load only when that backend is asked for.
    if name == "OttGW":
        from gmgbench.methods.ot.ott_gw import OttGW

        return OttGW
    raise AttributeError(f"module 'gmgbench.methods.ot' has no attribute {name!r}")


def solver(backend: str = "torch", *, epsilon=None, epsilon0=None, **solver_kw):
    """The solver object of a backend: ``"torch"`` (:class:`TorchGW`) or ``"ott"`` (:class:`OttGW`),
    with ``epsilon`` (raw cost scale) or ``epsilon0`` (relative to ``mean(C_X)·mean(C_Y)``),
    exactly one, and the other :class:`GWSettings`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    try:
        if backend == "torch":
            return TorchGW(epsilon=epsilon, epsilon0=epsilon0, **solver_kw)
        from gmgbench.methods.ot.ott_gw import OttGW

        return OttGW(epsilon=epsilon, epsilon0=epsilon0, **solver_kw)
    except TypeError as err:
        raise TypeError(f"GW backend {backend!r}: {err}") from err


def solve_gw(cost_x: torch.Tensor, cost_y: torch.Tensor, epsilon=None, backend: str = "torch", *,
             epsilon0=None, init: torch.Tensor | None = None, **solver_kw) -> GWOutput:
    """Entropic GW between ``cost_x`` and ``cost_y`` with uniform marginals.

    Args:
      cost_x: ``[n, n]`` or ``[B, n, n]``.
      cost_y: ``[m, m]`` or ``[B, m, m]``.
      epsilon: entropic regularisation (ott-jax's ε; POT's is twice it) on the raw costs'
        scale; or instead
      epsilon0: the same relative to ``mean(C_X)·mean(C_Y)`` (ε = ε0·mean(C_X)·mean(C_Y): the
        GMG regulariser's ε0). Exactly one of the two.
      backend: ``"torch"`` or ``"ott"``.
      init: the coupling to linearise at first (torch backend only; default the product
        coupling), e.g. ``GWProblem(cost_x, cost_y).identity_coupling()``.
      **solver_kw: solver settings (``threshold``, ``sinkhorn_threshold``,
        ``max_iterations``, ...).

    Returns:
      a :class:`GWOutput`; ``.cost`` is differentiable with respect to the cost matrices
      with the coupling held fixed (envelope theorem).
    """
    return solver(backend, epsilon=epsilon, epsilon0=epsilon0, **solver_kw)(GWProblem(cost_x, cost_y), init=init)
