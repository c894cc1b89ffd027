"""DIP-VAE-I and DIP-VAE-II (Kumar et al., ICLR 2018) as disentanglement_lib 1.5 computes them.

Both add to the VAE loss (recon + KL) a penalty pulling a covariance matrix towards I:

    DIP(C) = λ_od · Σ_{i≠j} C_ij² + λ_d · Σ_i (C_ii − 1)²,    λ_d = lambda_d_factor · λ_od

- **I** (Eq. 6): C = Cov_batch[μ(x)], the biased (1/B) batch covariance of the posterior means;
- **II** (Eq. 7): C = E_batch[diag(exp(logvar))] + Cov_batch[μ(x)], the covariance of the
  aggregate posterior q(z).

dlib's study fixes ``lambda_d_factor`` at 10 for I and at 1 for II and sweeps λ_od over
{1, 2, 5, 10, 20, 50} (``config/unsupervised_study_v1/sweep.py``); those are the defaults
here, with λ_od = 10 inside that grid.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gmgbench.methods.base import ForwardPass, LossAndLogs, Objective, check_non_negative
from gmgbench.methods.beta_vae import gaussian_kl, reconstruction_loss

__all__ = ["DIPVAEI", "DIPVAEII", "covariance", "dip_penalty"]


def covariance(mu: torch.Tensor) -> torch.Tensor:
    """E[μμᵀ] − E[μ]E[μ]ᵀ over the batch, ``[D, D]`` (dlib's ``compute_covariance_z_mean``)."""
    mean = mu.mean(0)
    return (mu.unsqueeze(2) * mu.unsqueeze(1)).mean(0) - mean.unsqueeze(1) * mean.unsqueeze(0)


def dip_penalty(cov: torch.Tensor, lambda_od: float, lambda_d: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(penalty, off-diagonal sum of squares, diagonal deviation sum of squares)``."""
    diag = torch.diagonal(cov)
    off = (cov - torch.diag(diag)).pow(2).sum()
    on = (diag - 1).pow(2).sum()
    return lambda_od * off + lambda_d * on, off, on


class DIPVAEI(Objective):
    """recon + KL + DIP(Cov[μ]) (Kumar et al., 2018, Eq. 6)."""

    name = "dip_vae_i"

    @dataclass(frozen=True)
    class Config:
        lambda_od: float = 10.0
        lambda_d_factor: float = 10.0

        def __post_init__(self):
            check_non_negative(self, "lambda_od", "lambda_d_factor")

    def target_covariance(self, out: ForwardPass) -> torch.Tensor:
        return covariance(out.mu)

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        rec = reconstruction_loss(out)
        kl = gaussian_kl(out.mu, out.logvar).sum()
        lambda_d = self.cfg.lambda_d_factor * self.cfg.lambda_od
        dip, off, on = dip_penalty(self.target_covariance(out), self.cfg.lambda_od, lambda_d)
        return rec + kl + dip, {"recon": rec.item(), "kl": kl.item(), "dip": dip.item(),
                                "cov_offdiag": off.item(), "cov_diag": on.item()}


class DIPVAEII(DIPVAEI):
    """recon + KL + DIP(E[Σ(x)] + Cov[μ]) (Kumar et al., 2018, Eq. 7)."""

    name = "dip_vae_ii"

    @dataclass(frozen=True)
    class Config(DIPVAEI.Config):
        lambda_d_factor: float = 1.0

    def target_covariance(self, out: ForwardPass) -> torch.Tensor:
        return torch.diag(out.logvar.exp().mean(0)) + covariance(out.mu)
