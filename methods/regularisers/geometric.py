"""What the geometric regularisers (``dst``, ``gmg``) share: their settings' base
:class:`GeometricConfig`, the map they judge, and its cost matrices on the batch.

- ``side="encoder"``: T = encoder, x ↦ z; the reference batch is the data batch ``out.x``.
- ``side="decoder"``: T = decoder, z ↦ sigmoid(decode(z)); the reference batch is the
  encoded batch.

``use_mean`` picks the code: the posterior mean or the reparameterised sample ``out.z``. By
default (``None``) the decoder is judged on the sample, the codes it decodes in training
(whose decoding is ``out.logits``, already computed), and the encoder on the mean; the mean
on the decoder side needs one more decoder pass (docs/performance.md gives its cost).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gmgbench.methods.base import ForwardPass, Regulariser
from gmgbench.methods.ot.costs import check_cost_name, pairwise_cost

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
      use_mean: code = posterior mean (True) or the reparameterised sample (False); None
        (default): the sample on the decoder side, the mean on the encoder side.
    """

    cost: str = "cos"
    side: str = "decoder"
    use_mean: bool | None = None

    def __post_init__(self):
        check_cost_name(self.cost, "cost")
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(map(repr, SIDES))}, got {self.side!r}")
        if self.use_mean is not None and not isinstance(self.use_mean, bool):
            raise ValueError(f"use_mean must be true, false or null (per side), got {self.use_mean!r}")

    @property
    def code_is_mean(self) -> bool:
        """Whether the judged code is the posterior mean (``use_mean``, resolved per side)."""
        return self.side == "encoder" if self.use_mean is None else self.use_mean


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
    src, img = map_pairs(out, cfg.side, cfg.code_is_mean)
    return pairwise_cost(src, cfg.cost), pairwise_cost(img, cfg.cost)
