"""The two kinds of method a study composes: a base objective and regularisers.

A run's loss is ``objective(out) + sum(reg.weight * reg(out))``. Both kinds are small
callables with a nested, frozen ``Config`` dataclass, so that a study spec's values go
through ``Config(**params)`` (a typo fails before anything trains) and ``asdict(cfg)`` is
what the results store records.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

__all__ = ["ForwardPass", "Objective", "Regulariser", "LossAndLogs"]

LossAndLogs = tuple[torch.Tensor, dict[str, float]]


@dataclass
class ForwardPass:
    """Everything one VAE forward pass produced, handed to objectives and regularisers.

    Args:
      x: input batch ``[B, C, H, W]`` in [0, 1].
      mu, logvar: posterior parameters ``[B, D]``.
      z: reparameterised sample ``[B, D]``.
      logits: decoder logits for ``z``, ``[B, C, H, W]`` (Bernoulli likelihood).
      model: the VAE itself, for terms that decode or encode again (decoder-side
        regularisers decode the posterior mean, the Jacobian penalty differentiates it).
      dataset_size: number of distinct observations, for estimators that need it
        (β-TCVAE's minibatch-stratified sampling).
    """

    x: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    logits: torch.Tensor
    model: torch.nn.Module
    dataset_size: int

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]


class _Configured:
    """Shared by objectives and regularisers: a name, a nested Config, ``to_dict``."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, cfg: Any = None):
        cfg = self.Config() if cfg is None else cfg
        if not isinstance(cfg, self.Config):
            raise TypeError(f"{type(self).__name__} expects a {self.Config.__qualname__}, got {type(cfg).__name__}")
        self.cfg = cfg

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Parameter names and their defaults (``MISSING`` when required)."""
        out = {}
        for f in dataclasses.fields(cls.Config):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                out[f.name] = f.default_factory()  # type: ignore[misc]
            else:
                out[f.name] = dataclasses.MISSING
        return out

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.cfg)


class Objective(_Configured):
    """A base model's training loss (β-VAE, β-TCVAE, ...).

    Subclasses set ``name``, a ``Config`` (inherit the parent's to extend it) and
    implement ``__call__(out) -> (loss, logs)`` where ``loss`` is a scalar to minimise
    and ``logs`` maps names to floats for the training curve.
    """

    kind: ClassVar[str] = "objective"

    def __call__(self, out: ForwardPass) -> LossAndLogs:  # pragma: no cover - abstract
        raise NotImplementedError


class Regulariser(_Configured):
    """A term added to any objective with weight ``cfg.weight`` (λ in the paper).

    ``__call__(out)`` returns the *unweighted* term and its logs; the training loop
    multiplies by ``cfg.weight``, so every regulariser's Config must have a ``weight``.
    """

    kind: ClassVar[str] = "regulariser"

    @dataclass(frozen=True)
    class Config:
        weight: float = 1.0

    def __call__(self, out: ForwardPass) -> LossAndLogs:  # pragma: no cover - abstract
        raise NotImplementedError


MethodFactory = Callable[..., _Configured]
