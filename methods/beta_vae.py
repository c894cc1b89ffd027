"""β-VAE (Higgins et al., 2017): Bernoulli reconstruction + β · KL(q(z|x) ‖ N(0, I))."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gmgbench.methods.base import ForwardPass, LossAndLogs, Objective

__all__ = ["BetaVAE", "reconstruction_loss", "gaussian_kl"]


def reconstruction_loss(out: ForwardPass) -> torch.Tensor:
    """Bernoulli negative log-likelihood summed over pixels, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(out.logits, out.x, reduction="sum") / out.batch_size


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) ‖ N(0, I)) per latent dimension, averaged over the batch: ``[D]``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).mean(0)


class BetaVAE(Objective):
    """recon + β·KL (Higgins et al., 2017); β = 1, our default, is the plain VAE."""

    name = "beta_vae"

    @dataclass(frozen=True)
    class Config:
        beta: float = 1.0

        def __post_init__(self):
            if not self.beta >= 0:
                raise ValueError(f"beta must be >= 0, got {self.beta}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        rec = reconstruction_loss(out)
        kl = gaussian_kl(out.mu, out.logvar).sum()
        loss = rec + self.cfg.beta * kl
        return loss, {"recon": rec.item(), "kl": kl.item()}
