"""The standard 64×64 convolutional VAE of the disentanglement literature.

Encoder: four 4×4 stride-2 convolutions (32, 32, 64, 64 channels) → FC 256 → mean and
log-variance of a diagonal Gaussian; the decoder mirrors it and outputs Bernoulli logits.
"""
from __future__ import annotations

import torch
from torch import nn

from gmgbench.methods.base import ForwardPass

__all__ = ["VAE"]


class VAE(nn.Module):
    def __init__(self, num_channels: int = 1, latent_dim: int = 10, image_size: int = 64):
        super().__init__()
        if image_size != 64:
            raise ValueError(f"the standard VAE takes 64×64 images, got {image_size}")
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(num_channels, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 4 * 4, 256), nn.ReLU(),
            nn.Linear(256, 2 * latent_dim),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 256), nn.ReLU(),
            nn.Linear(256, 64 * 4 * 4), nn.ReLU(),
            nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, num_channels, 4, 2, 1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, C, 64, 64]`` in [0, 1] → posterior mean and log-variance ``[B, D]``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``z [B, D]`` → Bernoulli logits ``[B, C, 64, 64]``."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, dataset_size: int = 0) -> ForwardPass:
        mu, logvar = self.encode(x)
        # An explicit generator makes the sampling noise part of the checkpointed state,
        # so a resumed run draws exactly the noise an uninterrupted one would have.
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + eps * torch.exp(0.5 * logvar)
        return ForwardPass(x=x, mu=mu, logvar=logvar, z=z, logits=self.decode(z), model=self,
                           dataset_size=dataset_size, generator=generator)
