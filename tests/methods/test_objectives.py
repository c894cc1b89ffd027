"""β-VAE and β-TCVAE, and the table of every objective × regulariser combination we own.

The β-TCVAE estimator is checked against closed forms: for data x ~ N(0, Σ) and posteriors
q(z|x) = N(x, s²I), the aggregate posterior is N(0, Σ + s²I), whose total correlation,
index-code mutual information and dimension-wise KL are analytic.
"""
from __future__ import annotations

import itertools
import math
import pickle

import pytest
import torch

from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import ForwardPass, call_checked
from gmgbench.methods.beta_tcvae import BetaTCVAE, _log_weights, kl_decomposition, log_density_gaussian
from gmgbench.methods.beta_vae import BetaVAE, gaussian_kl

N_HUGE = 10**9  # "continuous" data: the batch is a sample from a vast dataset


def _gaussian_truth(cov: torch.Tensor, s2: float) -> dict[str, float]:
    c = cov + s2 * torch.eye(len(cov), dtype=cov.dtype)
    d = len(cov)
    diag = torch.diagonal(c)
    return {
        "tc": 0.5 * (torch.log(diag).sum() - torch.logdet(c)).item(),
        "mi": 0.5 * (torch.logdet(c) - d * math.log(s2)).item(),
        "dim_kl": (0.5 * (diag - 1 - torch.log(diag))).sum().item(),
    }


def _gaussian_batch(cov: torch.Tensor, s2: float, m: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(cov)
    x = torch.randn(m, len(cov), generator=g, dtype=cov.dtype) @ chol.T
    z = x + math.sqrt(s2) * torch.randn(m, len(cov), generator=g, dtype=cov.dtype)
    return z, x, torch.full_like(x, math.log(s2))


COVS = {
    "independent": torch.eye(2, dtype=torch.float64),
    "rho=0.5": torch.tensor([[1.0, 0.5], [0.5, 1.0]], dtype=torch.float64),
    "rho=0.8": torch.tensor([[1.0, 0.8], [0.8, 1.0]], dtype=torch.float64),
    "3d": torch.tensor([[1.0, 0.6, 0.3], [0.6, 1.5, -0.4], [0.3, -0.4, 0.8]], dtype=torch.float64),
}


@pytest.mark.parametrize("case", list(COVS))
def test_mss_recovers_analytic_total_correlation(case):
    cov, s2 = COVS[case], 0.3
    truth = _gaussian_truth(cov, s2)
    est = {k: [] for k in truth}
    for seed in range(2):
        parts = kl_decomposition(*_gaussian_batch(cov, s2, 2000, seed), N_HUGE, "mss")
        for k in truth:
            est[k].append(parts[k].item())
    mean = {k: sum(v) / len(v) for k, v in est.items()}
    assert mean["tc"] == pytest.approx(truth["tc"], abs=0.03), (mean, truth)
    assert mean["mi"] == pytest.approx(truth["mi"], abs=0.08), (mean, truth)
    assert mean["dim_kl"] == pytest.approx(truth["dim_kl"], abs=0.02), (mean, truth)


def test_correlated_latents_have_clearly_positive_tc_at_training_batch_size():
    cov = torch.tensor([[1.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    truth = _gaussian_truth(cov, 0.1)["tc"]
    tcs = [kl_decomposition(*_gaussian_batch(cov, 0.1, 64, seed), N_HUGE, "mss")["tc"].item() for seed in range(10)]
    assert min(tcs) > 0, tcs
    assert sum(tcs) / len(tcs) == pytest.approx(truth, rel=0.35)


def test_independent_latents_tc_is_zero_up_to_estimator_noise():
    # The log of an unbiased density estimate is biased low (Jensen), so a TC near 0 can
    # come out a little negative; it must be noise of the size the batch implies, not a
    # systematic offset (a wrong importance weight shifts it by O(log M) or O(log N)).
    tcs = [kl_decomposition(*_gaussian_batch(COVS["independent"], 0.3, 2000, seed), N_HUGE)["tc"].item()
           for seed in range(3)]
    assert all(abs(t) < 0.01 for t in tcs), tcs


def test_mws_is_offset_by_d_minus_1_log_n_as_chen_et_al_define_it():
    cov, s2 = COVS["3d"], 0.3
    z, mu, logvar = _gaussian_batch(cov, s2, 2000, 0)
    n = 10**6
    mws = kl_decomposition(z, mu, logvar, n, "mws")["tc"].item()
    assert mws - 2 * math.log(n) == pytest.approx(_gaussian_truth(cov, s2)["tc"], abs=0.05)


@pytest.mark.parametrize("estimator", ["mss", "mws"])
@pytest.mark.parametrize("n", [7, 1000])
def test_terms_add_up_to_the_monte_carlo_kl(estimator, n):
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(16, 4, generator=g, dtype=torch.float64), 0.3 * torch.randn(16, 4, generator=g, dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(16, 4, generator=g, dtype=torch.float64)
    parts = kl_decomposition(z, mu, logvar, n, estimator)
    mc_kl = (log_density_gaussian(z, mu, logvar) - log_density_gaussian(z, 0 * z, 0 * z)).sum(1).mean()
    assert (parts["mi"] + parts["tc"] + parts["dim_kl"]).item() == pytest.approx(mc_kl.item(), rel=1e-9)


@pytest.mark.parametrize("m,n", [(2, 2), (5, 9), (64, 737280)])
def test_stratified_weights_sum_to_one_per_row(m, n):
    # Chen et al.'s published matrix has a row summing to 1 − 1/N (its ``W[M-1, 0]`` line).
    w = _log_weights(m, n, "mss", torch.zeros((), dtype=torch.float64)).exp()
    assert torch.allclose(w.sum(1), torch.ones(m, dtype=torch.float64))


def test_stratified_estimate_of_q_z_is_unbiased_over_all_batches():
    # A dataset of N = 6 posteriors; z drawn from posterior 0. Averaged over every batch
    # that holds item 0 plus M − 1 = 2 others (without replacement), the estimate of q(z)
    # must equal the exact mixture (1/N) Σ_n q(z|n).
    g = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(6, 2, generator=g, dtype=torch.float64), 0.5 * torch.randn(6, 2, generator=g, dtype=torch.float64)
    z = mu[0] + torch.exp(0.5 * logvar[0]) * torch.randn(2, generator=g, dtype=torch.float64)
    exact = log_density_gaussian(z, mu, logvar).sum(1).exp().mean()
    estimates = []
    for others in itertools.combinations(range(1, 6), 2):
        idx = torch.tensor([0, *others])
        logw = _log_weights(3, 6, "mss", z)
        row = logw[0] + log_density_gaussian(z, mu[idx], logvar[idx]).sum(1)
        estimates.append(row.logsumexp(0).exp())
    assert torch.stack(estimates).mean().item() == pytest.approx(exact.item(), rel=1e-12)


def _tiny_out(seed: int = 0, batch: int = 4, dataset_size: int = 1000) -> ForwardPass:
    torch.manual_seed(seed)
    model = VAE(num_channels=1, latent_dim=4)
    x = torch.rand(batch, 1, 64, 64, generator=torch.Generator().manual_seed(seed))
    return model(x, generator=torch.Generator().manual_seed(seed), dataset_size=dataset_size)


def test_beta_tcvae_with_unit_weights_is_the_vae_with_a_monte_carlo_kl():
    out = _tiny_out()
    loss, logs = call_checked(registry.build("beta_tcvae", "objective", {"alpha": 1.0, "beta": 1.0, "gamma": 1.0}), out)
    mc_kl = (log_density_gaussian(out.z, out.mu, out.logvar) - log_density_gaussian(out.z, 0 * out.z, 0 * out.z)).sum(1).mean()
    assert loss.item() == pytest.approx(logs["recon"] + mc_kl.item(), rel=1e-5)
    assert logs["kl"] == pytest.approx(gaussian_kl(out.mu, out.logvar).sum().item())
    assert {"recon", "kl", "mi", "tc", "dim_kl"} <= set(logs)


def test_beta_tcvae_config_extends_beta_vae_config():
    assert issubclass(BetaTCVAE.Config, BetaVAE.Config)
    assert BetaTCVAE.parameters() == {"beta": 6.0, "alpha": 1.0, "gamma": 1.0, "estimator": "mss", "form": "chen"}
    with pytest.raises(ValueError, match="beta must be >= 0"):
        BetaTCVAE.Config(beta=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        BetaTCVAE.Config(alpha=-1.0)
    with pytest.raises(ValueError, match="estimator must be one of mss, mws"):
        BetaTCVAE.Config(estimator="MSS")


def test_beta_tcvae_needs_the_dataset_size():
    out = _tiny_out(dataset_size=0)
    with pytest.raises(ValueError, match="dataset size"):
        registry.build("beta_tcvae", "objective")(out)


def test_beta_vae_loss_is_recon_plus_beta_kl():
    out = _tiny_out()
    loss, logs = call_checked(registry.build("beta_vae", "objective", {"beta": 4.0}), out)
    assert loss.item() == pytest.approx(logs["recon"] + 4 * gaussian_kl(out.mu, out.logvar).sum().item(), rel=1e-6)


# -- the table: every objective × regulariser combination we own -------------------------
OBJECTIVES = [("beta_vae", {"beta": 4.0}), ("beta_tcvae", {}), ("beta_tcvae", {"estimator": "mws"})]
REGULARISER_SETS = [
    (),
    (("hfs", {"weight": 10.0, "num_pairs": 3}),),
    (("jacobian", {"side": "decoder"}),),
    (("jacobian", {"side": "encoder", "c": 1.0}),),
    (("hfs", {}), ("jacobian", {"use_mean": False, "num_projections": 2})),
]


@pytest.mark.parametrize("regs", REGULARISER_SETS, ids=lambda r: "+".join(n for n, _ in r) or "none")
@pytest.mark.parametrize("objective", OBJECTIVES, ids=lambda o: o[0] + "".join(f"-{v}" for v in o[1].values()))
def test_table_build_step_and_pickle(objective, regs):
    obj = registry.build(objective[0], "objective", objective[1])
    terms = [registry.build(name, "regulariser", params) for name, params in regs]
    for term in [obj, *terms]:  # submitit pickles the job, methods included
        clone = pickle.loads(pickle.dumps(term))
        assert type(clone) is type(term) and clone.cfg == term.cfg

    out = _tiny_out()
    loss, logs = call_checked(obj, out)
    for reg in terms:
        value, rlogs = call_checked(reg, out)
        assert torch.isfinite(value) and value.item() >= 0
        loss = loss + reg.cfg.weight * value
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in out.model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
