"""β-TCVAE (Chen et al., 2018): the KL term split into MI + TC + dimension-wise KL.

For a batch of M posterior samples ``z_i ~ q(z|n_i)`` from a dataset of N observations,

    loss = recon + α·MI + β·TC + γ·DWKL
    MI   = mean_i [log q(z_i|n_i) − log q(z_i)]
    TC   = mean_i [log q(z_i) − Σ_d log q(z_id)]
    DWKL = mean_i [Σ_d log q(z_id) − log p(z_i)]

The three add up to the Monte-Carlo KL ``mean_i [log q(z_i|n_i) − log p(z_i)]`` for any
estimator of the aggregate posterior q(z) = (1/N) Σ_n q(z|n). Two estimators of
``log q(z_i)`` (and of each marginal ``log q(z_id)``) from the batch:

- ``"mss"`` (default), minibatch-stratified sampling: the sample's own posterior gets
  weight 1/N and each of the other M−1 batch members (N−1)/(N(M−1)). For a batch drawn
  without replacement this is an unbiased estimate of q(z_i) (the self term is exact, the
  others are a uniform sample of the remaining N−1). It is Chen et al.'s stratification with
  all non-self strata merged; their code's importance matrix has one extra stratum and an
  off-by-one row (``W[M-1, 0]``), which we do not copy. The log of an unbiased estimate is
  biased low (Jensen), more so in D dimensions than in one, so at small batches a TC near 0
  can come out slightly negative; that is estimator noise, and it shrinks with the batch.
- ``"mws"``, minibatch-weighted sampling exactly as in Chen et al. (Sec. 4.1) and their code:
  ``log q(z_i) ≈ logsumexp_j log q(z_i|n_j) − log(N·M)``. Its gradients equal those of a
  plain batch average, but its values are offset: when the posteriors overlap, each log
  density is about log N too low, so the reported TC is about (D−1)·log N too high (and MI
  and DWKL shift to compensate). Offered to reproduce numbers computed that way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from methods.base import ForwardPass, LossAndLogs, Objective
from methods.beta_vae import BetaVAE, gaussian_kl, reconstruction_loss
from methods.registry import register

__all__ = ["BetaTCVAE", "kl_decomposition", "log_density_gaussian"]

ESTIMATORS = ("mss", "mws")
_LOG_2PI = math.log(2 * math.pi)


def log_density_gaussian(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)) (broadcasting)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def _log_weights(batch_size: int, dataset_size: int, estimator: str, like: torch.Tensor) -> torch.Tensor:
    """``[M, M]`` log importance weights of q(z_i | n_j) in the estimate of q(z_i)."""
    m, n = batch_size, dataset_size
    if estimator == "mws":
        return like.new_full((m, m), -math.log(n * m))
    if m == 1:
        return like.new_zeros((1, 1))  # only the self term: q(z) ≈ q(z|n)
    other = math.log(n - 1) - math.log(n * (m - 1)) if n > 1 else -math.inf
    w = like.new_full((m, m), other)
    w.fill_diagonal_(-math.log(n))
    return w


def kl_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                     estimator: str = "mss") -> dict[str, torch.Tensor]:
    """MI, TC and dimension-wise KL of a batch, in nats (scalars, differentiable).

    Args:
      z: posterior samples ``[M, D]``, ``z[i] ~ q(z|n_i)``.
      mu, logvar: the posteriors' parameters ``[M, D]``.
      dataset_size: N, the number of observations the batch was drawn from.
      estimator: ``"mss"`` or ``"mws"`` (see the module docstring).
    Returns:
      ``{"mi", "tc", "dim_kl"}``; their sum is the Monte-Carlo KL(q(z|x) ‖ N(0, I)).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if dataset_size < 1:
        raise ValueError(f"β-TCVAE needs the dataset size N >= 1 (ForwardPass.dataset_size), got {dataset_size}")
    m = z.shape[0]
    # cross[i, j, d] = log q(z_id | n_j)
    cross = log_density_gaussian(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    logw = _log_weights(m, dataset_size, estimator, z)
    log_qz = torch.logsumexp(logw + cross.sum(2), dim=1)
    log_qz_marginals = torch.logsumexp(logw.unsqueeze(2) + cross, dim=1).sum(1)
    log_qz_given_x = torch.diagonal(cross, dim1=0, dim2=1).sum(0)
    log_pz = log_density_gaussian(z, torch.zeros_like(z), torch.zeros_like(z)).sum(1)
    return {
        "mi": (log_qz_given_x - log_qz).mean(),
        "tc": (log_qz - log_qz_marginals).mean(),
        "dim_kl": (log_qz_marginals - log_pz).mean(),
    }


@register
class BetaTCVAE(Objective):
    """recon + α·MI + β·TC + γ·DWKL (Chen et al., 2018), on the posterior samples."""

    name = "beta_tcvae"

    @dataclass(frozen=True)
    class Config(BetaVAE.Config):
        """α = γ = 1 as in Chen et al.; β = 6 is the default of the HFS code
        (facebookresearch/disentangling-correlated-factors); studies sweep β."""

        beta: float = 6.0
        alpha: float = 1.0
        gamma: float = 1.0
        estimator: str = "mss"

        def __post_init__(self):
            super().__post_init__()
            for key in ("alpha", "gamma"):
                if not getattr(self, key) >= 0:
                    raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
            if self.estimator not in ESTIMATORS:
                raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        rec = reconstruction_loss(out)
        parts = kl_decomposition(out.z, out.mu, out.logvar, out.dataset_size, self.cfg.estimator)
        loss = rec + self.cfg.alpha * parts["mi"] + self.cfg.beta * parts["tc"] + self.cfg.gamma * parts["dim_kl"]
        logs = {"recon": rec.item(), "kl": gaussian_kl(out.mu, out.logvar).sum().item()}
        logs.update({k: v.item() for k, v in parts.items()})
        return loss, logs
