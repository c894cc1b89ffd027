"""The two kinds of method a study composes: a base objective and regularisers.

A run's loss is ``objective(out) + sum(reg.cfg.weight * reg(out))``. Both kinds are small
callables with a nested, frozen ``Config`` dataclass, so that a study spec's values go
through ``Config(**params)`` (a typo fails before anything trains) and ``asdict(cfg)`` is
what the results store records. The training loop calls every term through
:func:`call_checked`, which turns a wrong return value into an error naming the method and
the file that defines it.

A method may also own trainable state of its own (FactorVAE's discriminator and its
optimiser). Four hooks with do-nothing defaults cover that, so a method without such state
is written exactly as before: :meth:`_Configured.setup` builds the modules once the latent
size and device are known, :meth:`_Configured.update` trains them after the VAE's step,
and :meth:`_Configured.state_dict` / :meth:`_Configured.load_state_dict` put them into
the run's checkpoint (tensors and plain containers only: checkpoints load with
``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch

__all__ = ["ForwardPass", "Objective", "Regulariser", "LossAndLogs", "MethodOutputError", "call_checked",
           "update_checked", "check_non_negative"]

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
      generator: the run's checkpointed noise generator. Terms that draw random numbers
        (HFS's latent pairs, the Jacobian penalty's projections) draw from it, so that a
        resumed run draws what an uninterrupted one would; ``None`` falls back to torch's
        global generator.
      step: how many training steps completed before this forward pass (dlib's global
        step), for schedules such as AnnealedVAE's capacity; 0 outside training.
    """

    x: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    logits: torch.Tensor
    model: torch.nn.Module
    dataset_size: int
    generator: torch.Generator | None = None
    step: int = 0

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]


def check_non_negative(config: Any, *keys: str) -> None:
    """Raise ``ValueError`` naming the first of ``keys`` whose value in ``config`` is not >= 0
    (NaN included): the weights of a method's Config, checked in its ``__post_init__``."""
    for key in keys:
        value = getattr(config, key)
        if not value >= 0:
            raise ValueError(f"{key} must be >= 0, got {value}")


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

    # -- optional hooks for a method that owns modules and optimisers --------------------
    def setup(self, latent_dim: int, device: torch.device) -> None:
        """Build what the method trains itself (called once, before the first step and
        before a checkpoint is loaded, after the run's seed is set). Default: nothing."""

    def update(self, out: ForwardPass) -> dict[str, float]:
        """Train the method's own modules on this step's forward pass, after the VAE's
        optimiser stepped (``out``'s tensors still hold the values the VAE's loss saw).
        Returns logs for the training curve. Default: nothing to train."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """The method's own trainable state (module and optimiser state dicts), saved in
        every checkpoint; tensors and plain containers only. Default: none."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (after :meth:`setup`)."""
        if state:
            raise ValueError(f"{self.kind} {self.name!r} keeps no state of its own, but the checkpoint has {sorted(state)}")

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(self.to_dict().items()))
        return f"{self.name}[{params}]"


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


class MethodOutputError(TypeError):
    """A method returned something other than ``(scalar tensor, dict[str, float])``.

    The message names the method, its kind and the file that defines it.
    """


def _source_file(obj: Any) -> str:
    for candidate in (obj, type(obj)):
        try:
            return inspect.getsourcefile(candidate) or "?"
        except TypeError:
            continue
    return "?"


def _describe(term: Any) -> str:
    """The method and the file that defines it, for error messages (no registry needed)."""
    if isinstance(term, _Configured):
        return f"{term.kind or 'method'} {term.name!r} ({_source_file(type(term))})"
    return f"method {getattr(term, '__qualname__', type(term).__name__)!r} ({_source_file(term)})"


def call_checked(term: Callable[[ForwardPass], Any], out: ForwardPass) -> LossAndLogs:
    """Call an objective or regulariser and check what it returned.

    Returns ``(loss, logs)`` with ``logs`` converted to a fresh ``dict[str, float]``.
    Raises :class:`MethodOutputError` naming the method and its file when the result is
    not a pair, the loss is not a one-element floating-point tensor, or a log value is not a
    real number (a tensor in the logs would keep the autograd graph alive and sync the
    device; call ``.item()``). A non-finite loss is *not* an error here: that is a
    diverged run, which the training loop reports with the step.
    """
    result = term(out)
    if not (isinstance(result, tuple) and len(result) == 2):
        got = f"a tuple of length {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise MethodOutputError(f"{_describe(term)} returned {got}; expected (loss, logs): a scalar tensor and a dict of floats")
    loss, logs = result
    if not isinstance(loss, torch.Tensor):
        raise MethodOutputError(f"{_describe(term)} returned a loss of type {type(loss).__name__}; expected a scalar torch.Tensor")
    if loss.numel() != 1 or not loss.is_floating_point():
        raise MethodOutputError(
            f"{_describe(term)} returned a loss of shape {tuple(loss.shape)} and dtype {loss.dtype}; "
            "expected a floating-point scalar (reduce over the batch, e.g. .mean() or .sum())"
        )
    return loss.reshape(()), _checked_logs(term, logs)


def update_checked(term: "_Configured", out: ForwardPass) -> dict[str, float]:
    """Call a method's :meth:`~_Configured.update` hook and check the logs it returned."""
    return _checked_logs(term, term.update(out))


def _checked_logs(term: Any, logs: Any) -> dict[str, float]:
    if not isinstance(logs, dict):
        raise MethodOutputError(f"{_describe(term)} returned logs of type {type(logs).__name__}; expected a dict[str, float]")
    clean: dict[str, float] = {}
    for key, value in logs.items():
        if not isinstance(key, str):
            raise MethodOutputError(f"{_describe(term)} returned a log key {key!r}; log keys must be str")
        if isinstance(value, torch.Tensor) or isinstance(value, bool) or not isinstance(value, numbers.Real):
            hint = " (call .item() on it)" if isinstance(value, torch.Tensor) else ""
            raise MethodOutputError(
                f"{_describe(term)} returned log {key!r} of type {type(value).__name__}{hint}; log values must be floats"
            )
        clean[key] = float(value)
    return clean

