"""A complete gmgbench regulariser in one file: decorrelate the posterior means.

The off-diagonal part of DIP-VAE-I's penalty (Kumar et al., 2018): the squared
off-diagonal entries of the batch covariance of μ,

    DECOR = Σ_{i≠j} Cov(μ)_ij²

A regulariser returns the *unweighted* term; the training loop adds ``weight · term`` to
whichever objective the study pairs it with:

    plugins: [latent_decorrelation.py]
    methods:
      - label: beta-vae+decor
        objective: beta_vae
        params: {beta: [4.0]}
        regularisers: [{name: latent_decorrelation, params: {weight: [10.0]}}]
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gmgbench.methods.base import ForwardPass, LossAndLogs, Regulariser
from gmgbench.methods.registry import register


@register
class LatentDecorrelation(Regulariser):
    """Σ_{i≠j} Cov(μ)_ij² over the batch (DIP-VAE-I's off-diagonal term)."""

    name = "latent_decorrelation"

    @dataclass(frozen=True)
    class Config(Regulariser.Config):  # inherits weight: float = 1.0 (λ)
        weight: float = 10.0  # a new default for the inherited field

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        mu = out.mu - out.mu.mean(0, keepdim=True)
        cov = mu.T @ mu / max(out.batch_size - 1, 1)
        off = cov - torch.diag(torch.diagonal(cov))
        term = off.pow(2).sum()
        return term, {"max_abs_cov": off.abs().max().item()}
