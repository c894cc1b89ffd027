"""The ground-truth dataset protocol, disentanglement_lib's, plus a fast training path.

disentanglement_lib's metric code consumes any object with ``num_factors``,
``factors_num_values``, ``observation_shape``, ``sample_factors``,
``sample_observations_from_factors``, ``sample`` and ``sample_observations``. Factor
sampling replays dlib's ``SplitDiscreteStateSpace`` call for call (one ``randint`` per
latent factor column, in order, then one per nuisance factor), so the same RandomState
yields the same factors and images as dlib.
"""
from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np
import torch

__all__ = ["GroundTruthData", "DatasetError"]


class DatasetError(RuntimeError):
    """A dataset is missing, truncated or malformed; the message names the file."""


class GroundTruthData:
    """Base class: subclasses declare factors and implement ``images(all_factors)``.

    ``factor_sizes`` covers every factor that determines an image; ``latent_factor_indices``
    picks the ones exposed to metrics (the rest are nuisance factors, resampled per image,
    like SmallNORB's instance).
    """

    name: ClassVar[str] = ""
    factor_names: ClassVar[Sequence[str]] = ()
    factor_sizes: ClassVar[Sequence[int]] = ()
    latent_factor_indices: ClassVar[Sequence[int] | None] = None
    observation_shape: ClassVar[tuple[int, int, int]] = (64, 64, 1)

    # -- what subclasses implement -------------------------------------------------
    def images(self, all_factors: np.ndarray) -> np.ndarray:
        """uint8 images ``[N, H, W, C]`` for full factor rows ``[N, len(factor_sizes)]``."""
        raise NotImplementedError

    # -- dlib's protocol ---------------------------------------------------------------
    @property
    def _latent(self) -> list[int]:
        idx = self.latent_factor_indices
        return list(range(len(self.factor_sizes))) if idx is None else list(idx)

    @property
    def _nuisance(self) -> list[int]:
        latent = set(self._latent)
        return [i for i in range(len(self.factor_sizes)) if i not in latent]

    @property
    def num_factors(self) -> int:
        return len(self._latent)

    @property
    def factors_num_values(self) -> list[int]:
        return [int(self.factor_sizes[i]) for i in self._latent]

    @property
    def dataset_size(self) -> int:
        return int(np.prod(self.factor_sizes))

    def sample_factors(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        factors = np.zeros((num, self.num_factors), dtype=np.int64)
        for pos, i in enumerate(self._latent):
            factors[:, pos] = random_state.randint(self.factor_sizes[i], size=num)
        return factors

    def _all_factors(self, factors: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
        factors = np.asarray(factors)
        num = factors.shape[0]
        out = np.zeros((num, len(self.factor_sizes)), dtype=np.int64)
        out[:, self._latent] = factors
        for i in self._nuisance:
            out[:, i] = random_state.randint(self.factor_sizes[i], size=num)
        return out

    def sample_observations_from_factors(self, factors: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
        return self.images(self._all_factors(factors, random_state)).astype(np.float32) / np.float32(255.0)

    def sample(self, num: int, random_state: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        return self.sample(num, random_state)[1]

    # -- training path -------------------------------------------------------------------
    def training_batch(self, factors: np.ndarray, random_state: np.random.RandomState,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """float32 ``[B, C, H, W]`` in [0, 1] on ``device``; uint8 until the last moment."""
        imgs = torch.from_numpy(self.images(self._all_factors(factors, random_state)))
        return imgs.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(factors={dict(zip(self.factor_names, self.factor_sizes))})"
