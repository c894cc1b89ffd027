"""Saving and loading ``checkpoint.pt`` / ``model.pt``: atomic writes, loads that never run code;
:func:`load_model`, a run's trained model, for whoever needs one (evaluation, figures, export).

Both files hold only tensors and plain containers (dicts, lists, str, int, float, bool,
None), so they load with ``torch.load(weights_only=True)``: a pickle planted in a results
store is refused, never executed. The RNG states a checkpoint needs are stored as tensors
(:func:`sampler_state` / :func:`set_sampler_state`); checkpoints written before that kept
NumPy's state as an array, which loads through torch's allow-list for plain NumPy arrays.

A file that cannot be loaded, truncated, unsafe or lacking what training reads from it,
raises :class:`StoreError` with one line that names the file and what to do.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmgbench.harness.fileio import atomic_write
from gmgbench.harness.results import StoreError
from gmgbench.harness.spec import RunSpec
from gmgbench.methods.architectures import VAE

__all__ = ["save", "load", "load_model", "checkpoint_step", "sampler_state", "set_sampler_state"]


def save(obj: Any, path: Path) -> None:
    """Write ``obj`` to ``path`` atomically (harness/fileio.py: removed if interrupted, umask mode)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _numpy_globals() -> list:
    # Plain numeric NumPy arrays (an older checkpoint's sampler state): torch documents this
    # allow-list; object arrays still need globals outside it and are refused.
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import _reconstruct
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load(path: Path, map_location: Any = "cpu", *, what: str = "checkpoint", fix: str = "") -> dict[str, Any]:
    """``torch.load(path, weights_only=True)``; any failure is one :class:`StoreError` line.

    ``fix`` says what the user can do (e.g. ``gmgbench run --repair`` moves the file aside).
    """
    path = Path(path)
    fix = fix or "move it aside (`gmgbench run STUDY --repair` does) and rerun the run"
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err)
        if "Weights only load failed" in detail and ("Unsupported global" in detail or "GLOBAL" in detail):
            raise StoreError(f"{path}: refused to load: the {what} holds Python objects other than tensors "
                             f"and plain containers (unsafe, not written by gmgbench); {fix}") from None
        raise StoreError(f"{path}: corrupt {what} (not a torch file); {fix}") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError) as err:
        if isinstance(err, FileNotFoundError):
            raise StoreError(f"{path}: no {what}; rerun the run (`gmgbench run --force` retrains it)") from None
        raise StoreError(f"{path}: corrupt or truncated {what} ({type(err).__name__}); {fix}") from None
    if not isinstance(obj, dict):
        raise StoreError(f"{path}: not a gmgbench {what} (holds a {type(obj).__name__}); {fix}")
    missing = [k for k in _REQUIRED.get(what, ()) if k not in obj]
    if missing:  # loads, but resuming would stop at a bare KeyError naming no file
        raise StoreError(f"{path}: incomplete {what} (no {', '.join(missing)}); {fix}")
    return obj


# What training reads from each kind of file unconditionally (harness/train.py).
_REQUIRED = {"checkpoint": ("model", "optimizer", "noise", "sampler", "step", "curve", "elapsed", "torch_rng"),
             "model": ("model", "run")}


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint reached, or None (absent or unreadable: only a progress hint)."""
    if not Path(path).is_file():
        return None
    try:
        return int(load(path)["step"])
    except (StoreError, KeyError, TypeError, ValueError):
        return None


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[VAE, RunSpec]:
    """The trained model in ``path`` (a run's ``model.pt``: ``ResultsStore.model_path``) and
    the run that trained it; loaded weights-only: a planted pickle never runs."""
    path = Path(path)
    fix = "retrain the run with `gmgbench run STUDY --force`"
    ckpt = load(path, map_location=device, what="model", fix=fix)
    try:
        run = RunSpec.from_dict(ckpt["run"])
        dataset_channels = ckpt["model"]["encoder.0.weight"].shape[1]
        model = VAE(num_channels=dataset_channels, latent_dim=run.train.latent_dim).to(device)
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as err:
        raise StoreError(f"{path}: not a gmgbench model ({type(err).__name__}: {err}); {fix}") from None
    model.eval()
    return model, run


def sampler_state(rs: np.random.RandomState) -> dict[str, Any]:
    """NumPy's RandomState as tensors and numbers (weights_only-loadable)."""
    name, key, pos, has_gauss, cached = rs.get_state()
    return {"name": name, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def set_sampler_state(rs: np.random.RandomState, state: Any) -> None:
    if isinstance(state, dict):
        key = state["key"].numpy().astype(np.uint32)
        rs.set_state((state["name"], key, state["pos"], state["has_gauss"], state["cached_gaussian"]))
    else:  # an older checkpoint: NumPy's own tuple
        rs.set_state(tuple(state))
