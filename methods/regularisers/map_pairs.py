"""The map a geometric regulariser judges, and its cost matrices on the batch.

- ``side="encoder"``: T = encoder, x ↦ z; the reference batch is the data batch ``out.x``.
- ``side="decoder"``: T = decoder, z ↦ sigmoid(decode(z)); the reference batch is the
  encoded batch.

``use_mean`` picks the code: the posterior mean (default) or the reparameterised sample
``out.z``. On the decoder side the sample's decoding is ``out.logits``, already computed;
the mean needs one more decoder pass (docs/performance.md gives its cost).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.base import ForwardPass, Regulariser
from methods.ot.costs import check_cost_name, pairwise_cost

__all__ = ["GeometricConfig", "SIDES", "map_pairs", "cost_matrices"]

SIDES = ("encoder", "decoder")


@dataclass(frozen=True)
class GeometricConfig(Regulariser.Config):
    """Shared by DST and GMG.

    Args:
      weight: λ, the term's weight in the loss.
      cost: ``"l2sq"``, ``"scl2sq"`` (L2² over its batch mean) or ``"cos"`` (1 − cosine),
        used on both sides of the map.
      side: ``"encoder"`` or ``"decoder"`` (see the module docstring).
      use_mean: code = posterior mean (True) or the reparameterised sample (False).
    """

    cost: str = "cos"
    side: str = "decoder"
    use_mean: bool = True

    def __post_init__(self):
        check_cost_name(self.cost, "cost")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(map(repr, SIDES))}, got {self.side!r}")
        if not isinstance(self.use_mean, bool):
            raise TypeError(f"use_mean must be a bool, got {self.use_mean!r}")


def map_pairs(out: ForwardPass, side: str, use_mean: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``(source [n, d_in], image [n, d_out])`` of the judged map on the batch, flattened."""
    code = out.mu if use_mean else out.z
    if side == "encoder":
        return out.x.flatten(1), code
    if side == "decoder":
        logits = out.logits if not use_mean else out.model.decode(code)
        return code, torch.sigmoid(logits).flatten(1)
    raise ValueError(f"side must be one of {', '.join(map(repr, SIDES))}, got {side!r}")


def cost_matrices(out: ForwardPass, cfg: GeometricConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C_X, C_Y)``, each ``[n, n]`` and differentiable."""
    src, img = map_pairs(out, cfg.side, cfg.use_mean)
    return pairwise_cost(src, cfg.cost), pairwise_cost(img, cfg.cost)
