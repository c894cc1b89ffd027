"""AnnealedVAE (Burgess et al., 2018, "Understanding disentangling in β-VAE", Eq. 8) as
disentanglement_lib 1.5 computes it.

    loss = recon + γ · |KL(q(z|x) ‖ N(0, I)) − C(step)|,
    C(step) = min(C_max, C_max · step / iteration_threshold)

``step`` is the number of steps completed before this one (``ForwardPass.step``, dlib's
global step), so the capacity grows linearly from 0 nats and stays at C_max after
``iteration_threshold`` steps. dlib's study fixes γ = 1000 and iteration_threshold = 100000
and sweeps C_max over {5, 10, 25, 50, 75, 100} (``config/unsupervised_study_v1/sweep.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

from gmgbench.methods.base import ForwardPass, LossAndLogs, Objective, check_non_negative
from gmgbench.methods.beta_vae import gaussian_kl, reconstruction_loss

__all__ = ["AnnealedVAE", "capacity"]


def capacity(c_max: float, step: int, iteration_threshold: int) -> float:
    """dlib's ``anneal``: C_max · step / threshold, capped at C_max."""
    return min(c_max * 1.0, c_max * 1.0 * step / iteration_threshold)


class AnnealedVAE(Objective):
    """recon + γ·|KL − C|, C annealed linearly from 0 to C_max (Burgess et al., 2018)."""

    name = "annealed_vae"

    @dataclass(frozen=True)
    class Config:
        gamma: float = 1000.0
        c_max: float = 25.0
        iteration_threshold: int = 100000

        def __post_init__(self):
            check_non_negative(self, "gamma", "c_max")
            t = self.iteration_threshold
            if isinstance(t, bool) or not isinstance(t, int) or t < 1:
                raise ValueError(f"iteration_threshold must be an integer >= 1, got {t!r}")

    def __call__(self, out: ForwardPass) -> LossAndLogs:
        rec = reconstruction_loss(out)
        kl = gaussian_kl(out.mu, out.logvar).sum()
        c = capacity(self.cfg.c_max, out.step, self.cfg.iteration_threshold)
        loss = rec + self.cfg.gamma * (kl - c).abs()
        return loss, {"recon": rec.item(), "kl": kl.item(), "capacity": c}
