"""β-TCVAE (Chen et al., 2018): the KL term split into MI + TC + dimension-wise KL.

For a batch of M posterior samples ``z_i ~ q(z|n_i)`` from a dataset of N observations,

    loss = recon + α·MI + β·TC + γ·DWKL
    MI   = mean_i [log q(z_i|n_i) − log q(z_i)]
    TC   = mean_i [log q(z_i) − Σ_d log q(z_id)]
    DWKL = mean_i [Σ_d log q(z_id) − log p(z_i)]

(``form: chen``). ``form: dlib`` is disentanglement_lib's ``beta_tc_vae`` instead:
``recon + KL + (β − 1)·TC`` with the closed-form KL and the ``mws`` TC without its constant
(needs ``estimator: mws`` and α = γ = 1; the same objective in expectation).

The three add up to the Monte-Carlo KL ``mean_i [log q(z_i|n_i) − log p(z_i)]`` for any
estimator of the aggregate posterior q(z) = (1/N) Σ_n q(z|n). Three estimators of
``log q(z_i)`` (and of each marginal ``log q(z_id)``) from the batch, each a matrix of
weights w_ij on q(z_i|n_j) (``logsumexp_j (log w_ij + log q(z_i|n_j))``):

- ``"mss"`` (default), minibatch-stratified sampling: the sample's own posterior gets
  weight 1/N and each of the other M−1 batch members (N−1)/(N(M−1)). For a batch drawn
  without replacement this is an unbiased estimate of q(z_i) (the self term is exact, the
  others are a uniform sample of the remaining N−1); every row sums to 1. The log of an
  unbiased estimate is biased low (Jensen), more so in D dimensions than in one, so at
  small batches a TC near 0 can come out slightly negative; that is estimator noise, and it
  shrinks with the batch.
- ``"hfs"``, the matrix of the HFS code (facebookresearch/disentangling-correlated-factors,
  ``is_mss=True``, taken from Chen et al.'s code), reproduced exactly for comparability with
  papers that used it. With K = M − 1 and s = (N − K)/(NK) it is 1/K everywhere except
  column 0 (1/N), column 1 (s) and entry [K−1, 0] (s): the strata are set by column (by
  position in the batch), not on the diagonal, so rows 0 and 1 weight their own posterior
  by 1/N and s and every other row by 1/K, like its neighbours. Row sums are 1, except row
  K−1's (1 + 1/K − 2/N). Weighting the self term by about 1/M instead of 1/N raises log q(z_i)
  far more than the marginals' logs, so its TC is higher than ``mss``'s on the same batch
  (docs/methods.md gives the measured offset).
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

from gmgbench.methods.base import ForwardPass, LossAndLogs, Objective
from gmgbench.methods.beta_vae import BetaVAE, gaussian_kl, reconstruction_loss

__all__ = ["BetaTCVAE", "kl_decomposition", "log_density_gaussian"]

ESTIMATORS = ("mss", "mws", "hfs")
FORMS = ("chen", "dlib")
_LOG_2PI = math.log(2 * math.pi)


def log_density_gaussian(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise log N(z; mu, exp(logvar)) (broadcasting)."""
    return -0.5 * (_LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def _log_weights(batch_size: int, dataset_size: int, estimator: str, like: torch.Tensor) -> torch.Tensor:
    """``[M, M]`` log importance weights of q(z_i | n_j) in the estimate of q(z_i)."""
    m, n = batch_size, dataset_size
    if estimator == "mws":
        return like.new_full((m, m), -math.log(n * m))
    if estimator == "hfs":
        return _hfs_log_weights(m, n).to(like.device, like.dtype)
    if m == 1:
        return like.new_zeros((1, 1))  # only the self term: q(z) ≈ q(z|n)
    other = math.log(n - 1) - math.log(n * (m - 1)) if n > 1 else -math.inf
    w = like.new_full((m, m), other)
    w.fill_diagonal_(-math.log(n))
    return w


def _hfs_log_weights(batch_size: int, dataset_size: int) -> torch.Tensor:
    """The HFS code's ``is_mss`` importance matrix (Chen et al.'s code), float32 as it builds it.

    With K = B − 1 and s = (N − K)/(N·K): every entry 1/K, then column 0 set to 1/N, column 1
    to s, and entry [K − 1, 0] to s. So only rows 0 and 1 weight their own posterior by 1/N
    and s; every other row weights its own posterior 1/K like the others.
    """
    if batch_size < 2:
        raise ValueError(f"the 'hfs' estimator needs a batch of at least 2, got {batch_size}")
    n, k = dataset_size, batch_size - 1
    strat = (n - k) / (n * k)
    w = torch.full((batch_size, batch_size), 1 / k, dtype=torch.float32)
    w[:, 0] = 1 / n
    w[:, 1] = strat
    w[k - 1, 0] = strat
    return w.log()


def kl_decomposition(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, dataset_size: int,
                     estimator: str = "mss") -> dict[str, torch.Tensor]:
    """MI, TC and dimension-wise KL of a batch, in nats (scalars, differentiable).

    Args:
      z: posterior samples ``[M, D]``, ``z[i] ~ q(z|n_i)``.
      mu, logvar: the posteriors' parameters ``[M, D]``.
      dataset_size: N, the number of observations the batch was drawn from.
      estimator: ``"mss"``, ``"hfs"`` or ``"mws"`` (see the module docstring).
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
        form: str = "chen"

        def __post_init__(self):
            super().__post_init__()
            for key in ("alpha", "gamma"):
                if not getattr(self, key) >= 0:
                    raise ValueError(f"{key} must be >= 0, got {getattr(self, key)}")
            if self.estimator not in ESTIMATORS:
                raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}, got {self.estimator!r}")
            if self.form not in FORMS:
                raise ValueError(f"form must be one of {', '.join(FORMS)}, got {self.form!r}")
            if self.form == "dlib" and (self.estimator != "mws" or self.alpha != 1 or self.gamma != 1):
                raise ValueError("form 'dlib' is disentanglement_lib's beta_tc_vae: it needs estimator 'mws' "
                                 f"and alpha = gamma = 1, got {self.estimator!r}, {self.alpha}, {self.gamma}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        rec = reconstruction_loss(out)
        parts = kl_decomposition(out.z, out.mu, out.logvar, out.dataset_size, self.cfg.estimator)
        kl = gaussian_kl(out.mu, out.logvar).sum()
        if self.cfg.form == "dlib":
            # dlib's total_correlation drops the constant (D − 1)·log(N·M) of the mws estimate.
            m, d = out.z.shape
            tc = parts["tc"] - (d - 1) * math.log(out.dataset_size * m)
            loss = rec + kl + (self.cfg.beta - 1) * tc
        else:
            loss = rec + self.cfg.alpha * parts["mi"] + self.cfg.beta * parts["tc"] + self.cfg.gamma * parts["dim_kl"]
        logs = {"recon": rec.item(), "kl": kl.item()}
        logs.update({k: v.item() for k, v in parts.items()})
        return loss, logs
