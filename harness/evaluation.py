"""A trained model scored by the metrics: the representation they see, and the evaluation
that ``gmgbench run`` (after training) and ``gmgbench evaluate`` (a stored model) share."""
from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import torch

from gmgbench.harness import data as datasets
from gmgbench.harness.spec import RunSpec
from gmgbench.methods.architectures import VAE

__all__ = ["representation_function", "evaluate_model", "check_finite"]

log = logging.getLogger(__name__)


def representation_function(model: VAE, device: torch.device | str = "cpu", batch_size: int = 256):
    """NHWC float batch → posterior means ``(B, D)``, encoded in large batches; its ``decode``
    attribute maps codes back to images."""

    @torch.no_grad()
    def encode(x: np.ndarray) -> np.ndarray:
        codes = []
        for i in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + batch_size])).to(device).permute(0, 3, 1, 2)
            codes.append(model.encode(xb)[0].cpu().numpy())
        return np.concatenate(codes) if codes else np.zeros((0, model.latent_dim), np.float32)

    @torch.no_grad()
    def decode(z: np.ndarray) -> np.ndarray:
        """Codes ``(B, D)`` → decoded images ``(B, H, W, C)`` (Bernoulli means), for metrics
        that judge the decoder (metrics/geometry.py)."""
        images = []
        for i in range(0, len(z), batch_size):
            zb = torch.from_numpy(np.ascontiguousarray(z[i:i + batch_size], dtype=np.float32)).to(device)
            images.append(torch.sigmoid(model.decode(zb)).permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(images)

    encode.decode = decode  # type: ignore[attr-defined]
    return encode


def evaluate_model(model: VAE, run: RunSpec, metric_settings: dict[str, dict] | None = None,
                   device: torch.device | str = "cpu", on_metric: Callable[[str, int, int], None] | None = None,
                   ) -> dict[str, dict[str, float]]:
    """The metrics ``metric_settings`` names (default: the run's own evaluation block) of
    ``model``, on the run's dataset with the run's evaluation seed."""
    from gmgbench import metrics  # late: scikit-learn and friends load only when something is scored

    settings = run.evaluation.settings() if metric_settings is None else metric_settings
    dataset = datasets.load(run.dataset, run.dataset_root)
    model.eval()
    return metrics.evaluate(dataset, representation_function(model, device),
                            {k: dict(v or {}) for k, v in settings.items()}, random_seed=run.evaluation.seed,
                            on_metric=on_metric)


def check_finite(name: str, scores: dict[str, dict[str, float]]) -> None:
    """Warn of each NaN score: the result keeps it (a board shows it), but a log should say so."""
    for mname, values in scores.items():
        for key, v in values.items():
            if isinstance(v, float) and math.isnan(v):
                log.warning("%s: metric %s.%s is NaN", name, mname, key)
