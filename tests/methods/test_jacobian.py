"""The Jacobian local-isometry penalty: ≈ 0 for isometries, the analytic value otherwise."""
from __future__ import annotations

import pytest
import torch

from gmgbench.methods import registry
from gmgbench.methods.architectures import VAE
from gmgbench.methods.base import ForwardPass, call_checked
from gmgbench.methods.regularisers.jacobian import JacobianIsometry, random_directions


class Linear(torch.nn.Module):
    """decode(z) = z Wᵀ (D → P); encode(x) = (x V, 0) (P → D)."""

    def __init__(self, w: torch.Tensor, v: torch.Tensor | None = None):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())
        self.v = torch.nn.Parameter((w if v is None else v).clone())

    def decode(self, z):
        return z @ self.w.T

    def encode(self, x):
        mu = x @ self.v
        return mu, torch.zeros_like(mu)


def _orthonormal(p: int, d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(p, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def _out(model, d: int = 3, p: int = 7, batch: int = 32, seed: int = 0) -> ForwardPass:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(batch, d, generator=g, dtype=torch.float64)
    x = torch.randn(batch, p, generator=g, dtype=torch.float64)
    return ForwardPass(x=x, mu=mu, logvar=torch.zeros_like(mu), z=mu + 0.1, logits=x, model=model,
                       dataset_size=100, generator=torch.Generator().manual_seed(seed))


def _penalty(model, seed: int = 0, **params) -> float:
    value, _ = call_checked(registry.build("jacobian", "regulariser", params), _out(model, seed=seed))
    return value.item()


@pytest.mark.parametrize("side", ["decoder", "encoder"])
def test_zero_for_an_isometric_linear_map(side):
    q = _orthonormal(7, 3, 0)  # QᵀQ = I: the decoder z ↦ Qz is an isometry, x ↦ Qᵀx a co-isometry
    assert _penalty(Linear(q), side=side, c=1.0) == pytest.approx(0.0, abs=1e-20)
    assert _penalty(Linear(q), side=side) == pytest.approx(0.0, abs=1e-20)
    # a scaled isometry: zero when c is the batch mean, (s² − 1)² = 9 when c = 1
    assert _penalty(Linear(2 * q), side=side) == pytest.approx(0.0, abs=1e-20)
    assert _penalty(Linear(2 * q), side=side, c=1.0) == pytest.approx(9.0, rel=1e-10)


@pytest.mark.parametrize("side", ["decoder", "encoder"])
def test_positive_and_matches_the_analytic_expectation_otherwise(side):
    # E_u (uᵀAu)² = (2‖A‖_F² + (tr A)²) / (D(D+2)) for u uniform on the sphere, A = JᵀJ − I
    w = _orthonormal(7, 3, 1) @ torch.diag(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    a = torch.diag(torch.tensor([0.25, 1.0, 4.0], dtype=torch.float64)) - torch.eye(3, dtype=torch.float64)
    expected = (2 * a.pow(2).sum() + a.trace() ** 2).item() / 15
    model = Linear(w)
    estimates = [_penalty(model, seed=s, side=side, c=1.0, num_projections=50) for s in range(4)]
    mean = sum(estimates) / len(estimates)
    assert min(estimates) > 0
    assert mean == pytest.approx(expected, rel=0.1)
    assert _penalty(model, side=side) > 0.05  # scale-free version also sees the distortion


def test_decoder_penalty_trains_the_decoder_not_the_codes():
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=4)
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model(x, generator=torch.Generator().manual_seed(0), dataset_size=10)
    value, logs = call_checked(registry.build("jacobian", "regulariser"), out)
    assert value.item() > 0 and logs["c"] > 0
    value.backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())


def test_encoder_penalty_trains_the_encoder():
    torch.manual_seed(0)
    model = VAE(num_channels=1, latent_dim=4)
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    out = model(x, generator=torch.Generator().manual_seed(0), dataset_size=10)
    value, _ = call_checked(registry.build("jacobian", "regulariser", {"side": "encoder"}), out)
    value.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_projections_come_from_the_run_generator():
    model = Linear(_orthonormal(7, 3, 1) @ torch.diag(torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)))
    assert _penalty(model, seed=3, c=1.0) == _penalty(model, seed=3, c=1.0)
    assert _penalty(model, seed=3, c=1.0) != _penalty(model, seed=4, c=1.0)
    u = random_directions((100, 5), torch.Generator().manual_seed(0))
    assert torch.allclose(u.norm(dim=1), torch.ones(100))


def test_config_defaults_and_checks():
    assert JacobianIsometry.parameters() == {"weight": 1.0, "side": "decoder", "use_mean": True, "c": None,
                                             "num_projections": 1}
    for bad, match in [({"side": "both"}, "side"), ({"c": 0.0}, "c must be"), ({"num_projections": 0}, "num_projections"), ({"num_projections": 2.0}, "must be an int"),
                       ({"use_mean": 1}, "use_mean")]:
        with pytest.raises(ValueError, match=match):
            registry.build("jacobian", "regulariser", bad)
