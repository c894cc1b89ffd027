"""A complete gmgbench method in one file: the capacity-controlled β-VAE.

Burgess et al. (2018), "Understanding disentangling in β-VAE": instead of weighting the KL
by β, pull it towards a target capacity C (in nats):

    loss = recon + gamma · |KL(q(z|x) ‖ N(0, I)) − capacity|

(The paper anneals C from 0 upwards during training; this example keeps it fixed so the
file stays short. The defaults are illustrative, not tuned.)

Use it in a study spec:

    plugins: [capacity_vae.py]           # path relative to the spec file
    methods:
      - label: capacity-vae
        objective: capacity_vae
        params: {gamma: [100.0], capacity: [5.0, 10.0]}

or check it on its own: ``gmgbench methods --plugin docs/examples/capacity_vae.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from gmgbench.methods.base import ForwardPass, LossAndLogs, Objective
from gmgbench.methods.beta_vae import gaussian_kl, reconstruction_loss
from gmgbench.methods.registry import register


@register  # adds "capacity_vae" to the registry when the file is loaded
class CapacityVAE(Objective):
    """recon + gamma·|KL − capacity| (Burgess et al., 2018)."""  # first line: `gmgbench methods`

    name = "capacity_vae"  # the name a study spec uses; must not clash with a built-in

    @dataclass(frozen=True)  # every parameter, with its default; the spec's params go through it
    class Config:
        gamma: float = 100.0
        capacity: float = 10.0

        def __post_init__(self):  # reject bad values before anything trains
            if self.gamma < 0 or self.capacity < 0:
                raise ValueError(f"gamma and capacity must be >= 0, got {self.gamma}, {self.capacity}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        rec = reconstruction_loss(out)  # Bernoulli NLL summed over pixels, mean over batch
        kl = gaussian_kl(out.mu, out.logvar).sum()
        loss = rec + self.cfg.gamma * (kl - self.cfg.capacity).abs()
        # (a scalar tensor to minimise, a dict of floats for the training curve)
        return loss, {"recon": rec.item(), "kl": kl.item()}
