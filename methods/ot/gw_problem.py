"""The quadratic (Gromov-Wasserstein) problem between two cost matrices with uniform marginals.

Objective, with the paper's ½ convention (ott-jax's ``primal_cost`` has no ½)::

    E(P) = ½ Σ_ijkl (C_X[i,k] − C_Y[j,l])² P[i,j] P[k,l]

Entropic GW with regularisation ε is ``min_P E(P) + ε·KL(P ‖ a bᵀ)`` over couplings with
marginals ``a`` and ``b`` (uniform); this ε is ott-jax's, half of POT's (docs/gw.md).
"""
from __future__ import annotations

import torch

__all__ = ["GWProblem", "quadratic_cost", "distortion"]


def _check_square(name: str, c: torch.Tensor) -> None:
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(c).__name__}")
    if c.dim() not in (2, 3) or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must be a square cost matrix [n, n] or a batch [B, n, n], got shape {tuple(c.shape)}")
    if not c.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {c.dtype}")


def quadratic_cost(cost_x: torch.Tensor, cost_y: torch.Tensor, coupling: torch.Tensor) -> torch.Tensor:
    """``E(P) = ½ Σ (C_X[i,k] − C_Y[j,l])² P[i,j] P[k,l]`` in O(n³), differentiable in all three.

    Args:
      cost_x: ``[n, n]`` or ``[B, n, n]``.
      cost_y: ``[m, m]`` or ``[B, m, m]``.
      coupling: ``[n, m]`` or ``[B, n, m]``; its own marginals are used, so the value is the
        exact objective of this matrix even when its marginals are slightly off.

    Returns:
      a scalar, or ``[B]``.
    """
    p1 = coupling.sum(-1)
    p2 = coupling.sum(-2)
    sx = ((cost_x * cost_x) @ p1.unsqueeze(-1)).squeeze(-1).mul(p1).sum(-1)
    sy = ((cost_y * cost_y) @ p2.unsqueeze(-1)).squeeze(-1).mul(p2).sum(-1)
    cross = (cost_x @ coupling @ cost_y.transpose(-1, -2) * coupling).sum((-1, -2))
    return 0.5 * (sx + sy) - cross


def distortion(cost_x: torch.Tensor, cost_y: torch.Tensor) -> torch.Tensor:
    """DST: ``(1/n²) Σ ½ (C_X − C_Y)²``, the quadratic cost of the coupling ``I/n`` that a map
    ``x_i ↦ y_i`` induces. Scalar, or ``[B]`` for batched costs."""
    if cost_x.shape != cost_y.shape:
        raise ValueError(f"distortion needs paired batches: cost_x {tuple(cost_x.shape)} vs cost_y {tuple(cost_y.shape)}")
    return 0.5 * (cost_x - cost_y).pow(2).mean((-1, -2))


class GWProblem:
    """Two cost matrices and uniform marginals; no iteration logic.

    Args:
      cost_x: ``[n, n]`` or ``[B, n, n]``.
      cost_y: ``[m, m]`` or ``[B, m, m]`` (same batch shape as ``cost_x``).

    The problem knows its cost scale (``mean_x``, ``mean_y``: each matrix's mean, clamped
    once here), as ott-jax's ``scale_cost="mean"`` geometries do. The solvers work on
    ``C / mean(C)`` (``normalised``): the coupling is the same as on the raw costs with
    ``ε / (mean(C_X)·mean(C_Y))`` (the marginal terms of the linearisation are separable and
    the cross term scales by the product of the means), and it keeps float32 solves sane when
    a collapsed decoder gives costs of 1e-6. A solver given ``epsilon0`` reads its ε in these
    units (:meth:`absolute_epsilon`).

    The cost matrices may require grad: the solvers use detached copies, and
    :meth:`cost` of the solved coupling is then differentiable (the envelope theorem).
    """

    def __init__(self, cost_x: torch.Tensor, cost_y: torch.Tensor):
        _check_square("cost_x", cost_x)
        _check_square("cost_y", cost_y)
        if cost_x.shape[:-2] != cost_y.shape[:-2]:
            raise ValueError(f"cost_x and cost_y must have the same batch shape, got {tuple(cost_x.shape)} and {tuple(cost_y.shape)}")
        if cost_x.device != cost_y.device or cost_x.dtype != cost_y.dtype:
            raise ValueError(f"cost_x and cost_y must share device and dtype, got {cost_x.device}/{cost_x.dtype} and {cost_y.device}/{cost_y.dtype}")
        self.cost_x = cost_x
        self.cost_y = cost_y
        # The one clamp of the scale: an all-zero cost matrix (every point equal) keeps a
        # positive scale and is left as is by the normalisation.
        tiny = torch.finfo(cost_x.dtype).tiny
        self.mean_x = cost_x.detach().mean((-1, -2)).clamp_min(tiny)
        self.mean_y = cost_y.detach().mean((-1, -2)).clamp_min(tiny)

    @property
    def is_batched(self) -> bool:
        return self.cost_x.dim() == 3

    @property
    def shape(self) -> tuple[int, int]:
        return self.cost_x.shape[-1], self.cost_y.shape[-1]

    @property
    def a(self) -> torch.Tensor:
        n = self.shape[0]
        return torch.full(self.cost_x.shape[:-1], 1.0 / n, dtype=self.cost_x.dtype, device=self.cost_x.device)

    @property
    def b(self) -> torch.Tensor:
        m = self.shape[1]
        return torch.full(self.cost_y.shape[:-1], 1.0 / m, dtype=self.cost_y.dtype, device=self.cost_y.device)

    @property
    def scale(self) -> torch.Tensor:
        """``mean(C_X)·mean(C_Y)`` (``[]`` or ``[B]``): a raw ε divided by it is the ε of the
        normalised problem."""
        return self.mean_x * self.mean_y

    def absolute_epsilon(self, *, epsilon=None, epsilon0=None) -> torch.Tensor:
        """ε on the raw costs' scale, detached: ``epsilon`` itself, or
        ``epsilon0·mean(C_X)·mean(C_Y)`` (the GMG regulariser's ε0); give one of them."""
        eps = torch.as_tensor(epsilon if epsilon0 is None else epsilon0, dtype=self.cost_x.dtype,
                              device=self.cost_x.device).detach()
        return eps if epsilon0 is None else eps * self.mean_x * self.mean_y

    def normalised(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(C_X / mean(C_X), C_Y / mean(C_Y), mean(C_X)·mean(C_Y))``, all detached."""
        cx, cy = self.cost_x.detach(), self.cost_y.detach()
        return cx / self.mean_x[..., None, None], cy / self.mean_y[..., None, None], self.scale

    def identity_coupling(self) -> torch.Tensor:
        """``I/n``: the coupling a map ``x_i ↦ y_i`` induces (square problems only); its
        :meth:`cost` is DST. A solver started from it is started from the map's own coupling."""
        n, m = self.shape
        if n != m:
            raise ValueError(f"the identity coupling needs a square problem, got {n}×{m}")
        eye = torch.eye(n, dtype=self.cost_x.dtype, device=self.cost_x.device) / n
        return eye.expand(*self.cost_x.shape[:-2], n, n).clone()

    def marginal_error(self, coupling: torch.Tensor) -> torch.Tensor:
        """L1 distance of the coupling's marginals to ``a`` and ``b`` (sum of both); ``[]`` or ``[B]``."""
        return (coupling.sum(-1) - self.a).abs().sum(-1) + (coupling.sum(-2) - self.b).abs().sum(-1)

    def cost(self, coupling: torch.Tensor) -> torch.Tensor:
        """:func:`quadratic_cost` on the raw costs (differentiable in them if they require grad)."""
        return quadratic_cost(self.cost_x, self.cost_y, coupling)
