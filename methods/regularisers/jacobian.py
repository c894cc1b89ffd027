"""A Jacobian local-isometry penalty: the geometric baseline without optimal transport.

For a map f with Jacobian J at a point, f is locally a (scaled) isometry when
``JᵀJ = c·I``. With u uniform on the unit sphere, ``‖J u‖² = uᵀJᵀJu`` equals c for every
u exactly then, so the penalty

    JAC(f) = mean over the batch and over ``num_projections`` directions u of (‖J u‖² / c − 1)²

is 0 iff JᵀJ = c·I at every point of the batch, and otherwise an unbiased Monte-Carlo
estimate of ``(2‖A‖_F² + (tr A)²) / (D(D+2))`` with ``A = JᵀJ/c − I`` (D: input dimension).
One direction costs one forward-mode product (decoder) or one reverse-mode product
(encoder), not a full Jacobian.

- ``side="decoder"`` (default): f = the decoder at the posterior mean (or the sample), u in
  latent space, ``J u`` by a Jacobian-vector product. The evaluation point is detached:
  the penalty shapes the decoder, it does not move the codes.
- ``side="encoder"``: f = the encoder's mean, x → μ. Its Jacobian is D×P with P ≫ D
  pixels, so ``JᵀJ`` cannot be c·I; the penalty uses the latent-side Gram ``JJᵀ = c·I``
  instead (the encoder is a scaled co-isometry: its pseudo-inverse is a scaled isometry),
  with u in latent space and ``‖Jᵀu‖`` by a vector-Jacobian product.
- ``c`` (our default ``None``): the batch mean of ``‖J u‖²``, not differentiated, so only the
  *shape* of JᵀJ is penalised, as scaled L2² does for the Gromov-Monge gap; a number asks
  for the strict isometry ``JᵀJ = c·I``.

The GMG paper names a Jacobian (local isometry) penalty as a baseline, but its exact form
could not be read (see ``docs/methods.md``); this formulation and its defaults are ours.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch.func import jvp

from gmgbench.methods.base import ForwardPass, LossAndLogs, Regulariser

__all__ = ["JacobianIsometry", "isometry_penalty", "random_directions"]

SIDES = ("decoder", "encoder")
_TINY = 1e-12


def random_directions(shape: tuple[int, ...], generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Directions uniform on the unit sphere, one per row: ``[B, D]``."""
    gen_device = generator.device if generator is not None else device
    u = torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)
    return u / u.norm(dim=-1, keepdim=True).clamp_min(_TINY)


def isometry_penalty(sq_norms: torch.Tensor, c: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``mean((‖Ju‖²/c − 1)²)`` from the squared norms ``‖Ju‖²``; returns it and the c used."""
    scale = sq_norms.detach().mean() if c is None else sq_norms.new_tensor(float(c))
    scale = scale.clamp_min(_TINY)
    return (sq_norms / scale - 1).pow(2).mean(), scale


def _decoder_sq_norms(model, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    with warnings.catch_warnings():
        # torch's own forward-mode decompositions call the deprecated torch.jit.script on
        # first use; nothing we can act on.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated", category=DeprecationWarning)
        _, ju = jvp(model.decode, (z,), (u,))
    return ju.flatten(1).pow(2).sum(1)


def _encoder_sq_norms(model, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        mu = model.encode(x)[0]
        (jtu,) = torch.autograd.grad(mu, x, grad_outputs=u, create_graph=True)
    return jtu.flatten(1).pow(2).sum(1)


class JacobianIsometry(Regulariser):
    """mean (‖J u‖²/c − 1)² over random unit directions u: local isometry of the decoder or encoder."""

    name = "jacobian"

    @dataclass(frozen=True)
    class Config(Regulariser.Config):
        side: str = "decoder"
        use_mean: bool = True
        c: float | None = None
        num_projections: int = 1

        # use_mean applies to the decoder side (where the decoder is differentiated);
        # the encoder side is differentiated at the data batch.
        def __post_init__(self):
            if not self.weight >= 0:
                raise ValueError(f"weight must be >= 0, got {self.weight}")
            if self.side not in SIDES:
                raise ValueError(f"side must be one of {', '.join(SIDES)}, got {self.side!r}")
            if not isinstance(self.use_mean, bool):
                raise ValueError(f"use_mean must be true (posterior mean) or false (sample), got {self.use_mean!r}")
            if self.c is not None and not self.c > 0:
                raise ValueError(f"c must be > 0 or null (batch mean), got {self.c}")
            if isinstance(self.num_projections, bool) or not isinstance(self.num_projections, int):
                raise ValueError(f"num_projections must be an int, got {self.num_projections!r}")
            if self.num_projections < 1:
                raise ValueError(f"num_projections must be >= 1, got {self.num_projections}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        model = out.model
        code = (out.mu if self.cfg.use_mean else out.z).detach()
        sq = []
        for _ in range(self.cfg.num_projections):
            u = random_directions(tuple(code.shape), out.generator, code.device, code.dtype)
            if self.cfg.side == "decoder":
                sq.append(_decoder_sq_norms(model, code, u))
            else:
                sq.append(_encoder_sq_norms(model, out.x, u))
        penalty, scale = isometry_penalty(torch.cat(sq), self.cfg.c)
        return penalty, {"c": scale.item()}
