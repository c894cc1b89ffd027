"""Pairwise cost matrices on a batch: the ``c_X`` and ``c_Y`` of the Gromov-Monge gap.

Three costs, by the names a study spec uses:

- ``"l2sq"``: squared Euclidean distance ``‖u − v‖²`` (distances);
- ``"scl2sq"``: ``‖u − v‖²`` divided by its batch mean (distances up to a scale). The paper
  names a scaled L2² but its scaling could not be read; dividing each cost matrix by its own
  batch mean is our documented default (see docs/gw.md). The mean is differentiated, so the
  cost is invariant to a global rescaling of the points;
- ``"cos"``: ``1 − cos(u, v)`` (angles). DST, GW and GMG are the same with the cosine
  similarity itself: ``c_X − c_Y`` only changes sign, which the square removes; ``1 − cos``
  keeps every cost non-negative with a zero diagonal, like the other two.
"""
from __future__ import annotations

import torch

__all__ = ["COSTS", "pairwise_cost", "check_cost_name"]

COSTS = ("l2sq", "scl2sq", "cos")

# Keeps cos finite for an all-zero row (a collapsed code); such a row is at angle 1 − 0 = 1
# from everything, which is what a direction-less point should be.
_NORM_FLOOR = 1e-12


def check_cost_name(cost: str, where: str = "cost") -> str:
    if cost not in COSTS:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, COSTS))}, got {cost!r}")
    return cost


def _sq_dists(u: torch.Tensor) -> torch.Tensor:
    # The Gram form is O(n²d) without the [n, n, d] difference tensor (images have d = 4096);
    # the clamp removes the tiny negatives its cancellation leaves, and the exact zero diagonal
    # keeps DST's diagonal terms exactly zero.
    sq = u.pow(2).sum(-1)
    d = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2 * u @ u.transpose(-1, -2)
    d = d.clamp_min(0)
    eye = torch.eye(u.shape[-2], dtype=torch.bool, device=u.device)
    return d.masked_fill(eye, 0.0)


def pairwise_cost(u: torch.Tensor, cost: str = "l2sq") -> torch.Tensor:
    """Cost matrix between all pairs of rows.

    Args:
      u: points ``[n, d]`` or a batch of point sets ``[B, n, d]``; images are flattened
        by the caller.
      cost: ``"l2sq"``, ``"scl2sq"`` or ``"cos"`` (see the module docstring).

    Returns:
      ``[n, n]`` (or ``[B, n, n]``) symmetric, non-negative, zero on the diagonal,
      differentiable with respect to ``u``.
    """
    check_cost_name(cost)
    if u.dim() not in (2, 3):
        raise ValueError(f"pairwise_cost expects points of shape [n, d] or [B, n, d], got {tuple(u.shape)}")
    if cost == "cos":
        unit = u / u.norm(dim=-1, keepdim=True).clamp_min(_NORM_FLOOR)
        c = (1 - unit @ unit.transpose(-1, -2)).clamp_min(0)
        eye = torch.eye(u.shape[-2], dtype=torch.bool, device=u.device)
        return c.masked_fill(eye, 0.0)
    d = _sq_dists(u)
    if cost == "scl2sq":
        d = d / d.mean(dim=(-1, -2), keepdim=True).clamp_min(torch.finfo(d.dtype).tiny)
    return d
