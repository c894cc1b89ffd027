"""FactorVAE (Kim & Mnih, ICML 2018) as disentanglement_lib 1.5 trains it.

    VAE loss           = recon + KL(q(z|x) ‖ N(0, I)) + γ · TC
    TC (density ratio) = mean_i [D(z_i)_0 − D(z_i)_1]
    discriminator loss = −½ mean_i log p(z_i)_0 − ½ mean_i log p(z̃_i)_1

``D`` is an MLP on the posterior sample with two logits (0: "from q(z)", 1: "from the
product of marginals"), ``p`` its softmax clipped to [1e-6, 1 − 1e-6], and ``z̃`` the batch
with every latent dimension permuted independently across the batch (dlib's
``shuffle_codes``, the paper's permute-dims). Because ``log D/(1−D)`` estimates
``log q(z)/Π_d q(z_d)``, the mean logit difference estimates the total correlation: the
density-ratio trick.

The discriminator and its Adam are this method's own (the :class:`gmgbench.methods.base` hooks):
:meth:`FactorVAE.setup` builds them, :meth:`FactorVAE.update` trains the discriminator
after the VAE's step, on the same samples the VAE's loss saw and with the discriminator's
weights from before either update (dlib groups both updates on one forward pass), and
:meth:`FactorVAE.state_dict` puts both into the run's checkpoint so a resumed run is bit
for bit an uninterrupted one. The permutation is drawn from the run's checkpointed
generator.

dlib's settings (``methods/shared/architectures.py: fc_discriminator``,
``config/unsupervised_study_v1/model_configs/shared.gin``): 6 dense layers of 1000 units
with leaky ReLU (slope 0.2, TensorFlow's default), Glorot-uniform weights and zero biases
(``tf.layers.dense``'s defaults), Adam(lr 1e-4, β1 0.5, β2 0.9, ε 1e-8).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from gmgbench.methods.base import ForwardPass, LossAndLogs, Objective
from gmgbench.methods.beta_vae import gaussian_kl, reconstruction_loss

__all__ = ["FactorVAE", "Discriminator", "permute_dims", "discriminator_loss"]

_CLIP = 1e-6  # dlib clips the discriminator's probabilities before the log


class Discriminator(nn.Module):
    """dlib's ``fc_discriminator``: ``layers`` × (dense ``hidden``, leaky ReLU 0.2), then 2 logits."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        sizes = [latent_dim] + [hidden] * layers
        blocks: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            blocks += [nn.Linear(fan_in, fan_out), nn.LeakyReLU(0.2)]
        blocks.append(nn.Linear(sizes[-1], 2))
        self.net = nn.Sequential(*blocks)
        for layer in self.net:
            if isinstance(layer, nn.Linear):  # tf.layers.dense: glorot_uniform kernel, zero bias
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each column of ``z [B, D]`` permuted independently across the batch (one draw for all columns)."""
    order = torch.rand(z.shape, generator=generator, device=z.device).argsort(dim=0)
    return z.gather(0, order)


def discriminator_loss(logits_z: torch.Tensor, logits_permuted: torch.Tensor) -> torch.Tensor:
    """−(½ mean log p(z)_0 + ½ mean log p(z̃)_1) with dlib's clipped softmax probabilities."""
    p_z = F.softmax(logits_z, dim=1).clamp(_CLIP, 1 - _CLIP)
    p_perm = F.softmax(logits_permuted, dim=1).clamp(_CLIP, 1 - _CLIP)
    return -(0.5 * p_z[:, 0].log().mean() + 0.5 * p_perm[:, 1].log().mean())


class FactorVAE(Objective):
    """recon + KL + γ·TC, TC by a discriminator trained alongside (Kim & Mnih, 2018)."""

    name = "factor_vae"

    @dataclass(frozen=True)
    class Config:
        """γ's grid in dlib's study is {10, 20, 30, 40, 50, 100}; the optimiser's settings are dlib's."""

        gamma: float = 10.0
        discriminator_lr: float = 1e-4
        discriminator_beta1: float = 0.5
        discriminator_beta2: float = 0.9
        discriminator_layers: int = 6
        discriminator_hidden: int = 1000

        def __post_init__(self):
            if not self.gamma >= 0:
                raise ValueError(f"gamma must be >= 0, got {self.gamma}")
            if not self.discriminator_lr > 0:
                raise ValueError(f"discriminator_lr must be > 0, got {self.discriminator_lr}")
            for key in ("discriminator_beta1", "discriminator_beta2"):
                if not 0 <= getattr(self, key) < 1:
                    raise ValueError(f"{key} must lie in [0, 1), got {getattr(self, key)}")
            for key in ("discriminator_layers", "discriminator_hidden"):
                value = getattr(self, key)
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{key} must be an integer >= 1, got {value!r}")

    discriminator: Discriminator | None = None
    optimizer: torch.optim.Adam | None = None

    def setup(self, latent_dim: int, device: torch.device) -> None:
        cfg = self.cfg
        self.discriminator = Discriminator(latent_dim, cfg.discriminator_hidden, cfg.discriminator_layers).to(device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.discriminator_lr,
                                          betas=(cfg.discriminator_beta1, cfg.discriminator_beta2), eps=1e-8)

    def _ready(self, out: ForwardPass) -> Discriminator:
        if self.discriminator is None:  # called outside the training loop (tests, notebooks)
            self.setup(out.z.shape[1], out.z.device)
        assert self.discriminator is not None
        return self.discriminator

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        disc = self._ready(out)
        rec = reconstruction_loss(out)
        kl = gaussian_kl(out.mu, out.logvar).sum()
        # The VAE's loss differentiates through D to z, but never into D's weights: those
        # are trained by update() alone (dlib's var_list split).
        frozen = {k: v.detach() for k, v in disc.named_parameters()}
        logits = torch.func.functional_call(disc, frozen, (out.z,))
        tc = (logits[:, 0] - logits[:, 1]).mean()
        loss = rec + kl + self.cfg.gamma * tc
        return loss, {"recon": rec.item(), "kl": kl.item(), "tc": tc.item()}

    def update(self, out: ForwardPass) -> dict[str, float]:
        disc = self._ready(out)
        assert self.optimizer is not None
        z = out.z.detach()
        logits_z, logits_perm = disc(torch.cat([z, permute_dims(z, out.generator)])).chunk(2)
        loss = discriminator_loss(logits_z, logits_perm)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            accuracy = 0.5 * ((logits_z[:, 0] > logits_z[:, 1]).float().mean()
                              + (logits_perm[:, 1] > logits_perm[:, 0]).float().mean())
        return {"discriminator_loss": loss.item(), "discriminator_accuracy": accuracy.item()}

    def state_dict(self) -> dict[str, Any]:
        if self.discriminator is None or self.optimizer is None:
            return {}
        return {"discriminator": self.discriminator.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        if self.discriminator is None or self.optimizer is None:
            raise RuntimeError("factor_vae: setup(latent_dim, device) must run before load_state_dict")
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
