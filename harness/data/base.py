"""The ground-truth dataset protocol, disentanglement_lib's, plus a fast training path.

disentanglement_lib's metric code consumes any object with ``num_factors``,
``factors_num_values``, ``observation_shape``, ``sample_factors``,
``sample_observations_from_factors``, ``sample`` and ``sample_observations``. Factor
sampling replays dlib's ``SplitDiscreteStateSpace`` call for call (one ``randint`` per
latent factor column, in order, then one per nuisance factor), so the same RandomState
yields the same factors and images as dlib.

Two kinds of dataset share this protocol: ``ArrayData`` keeps a real dataset's images in
memory as integers in row-major factor order (converted to float per batch, never as a
whole), and procedural datasets render ``images(all_factors)`` on the fly.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

import numpy as np

from gmgbench.harness.errors import UserError

if TYPE_CHECKING:  # torch loads with the first batch: `gmgbench --help` must not wait for it
    import torch

__all__ = ["GroundTruthData", "ArrayData", "DatasetError"]


class DatasetError(UserError, RuntimeError):
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
        """uint8 images ``[N, H, W, C]`` (0..255) for full factor rows ``[N, len(factor_sizes)]``."""
        raise NotImplementedError

    def observations(self, all_factors: np.ndarray) -> np.ndarray:
        """float32 images ``[N, H, W, C]``, the values dlib's metrics see."""
        return self.images(all_factors).astype(np.float32) / np.float32(255.0)

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
    def latent_factor_names(self) -> list[str]:
        return [self.factor_names[i] for i in self._latent]

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
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(
                f"{self.name}: factors must have shape [N, {self.num_factors}] "
                f"({', '.join(self.latent_factor_names)}); got {factors.shape}"
            )
        sizes = np.asarray(self.factors_num_values)
        if factors.size and ((factors < 0).any() or (factors >= sizes).any()):
            raise ValueError(f"{self.name}: factor values must lie in [0, size) for sizes {sizes.tolist()}")
        num = factors.shape[0]
        out = np.zeros((num, len(self.factor_sizes)), dtype=np.int64)
        out[:, self._latent] = factors
        for i in self._nuisance:
            out[:, i] = random_state.randint(self.factor_sizes[i], size=num)
        return out

    def sample_observations_from_factors(self, factors: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
        return self.observations(self._all_factors(factors, random_state))

    def sample(self, num: int, random_state: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(num, random_state)
        return factors, self.sample_observations_from_factors(factors, random_state)

    def sample_observations(self, num: int, random_state: np.random.RandomState) -> np.ndarray:
        return self.sample(num, random_state)[1]

    # -- training path -------------------------------------------------------------------
    def training_batch(self, factors: np.ndarray, random_state: np.random.RandomState,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """float32 ``[B, C, H, W]`` on ``device``: the observations of ``factors``, uint8 until on device."""
        import torch

        imgs = torch.from_numpy(self.images(self._all_factors(factors, random_state)))
        return imgs.to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(factors={dict(zip(self.factor_names, self.factor_sizes))})"


class ArrayData(GroundTruthData):
    """Images held in memory in row-major factor order: image of factors ``f`` is ``store[f · bases]``.

    Subclasses fill ``self._store`` (``[N, H, W, C]`` integers; or, with ``packed_bits``,
    binary images packed along the width, ``[N, H, W // 8]``) in their constructor.
    ``divisor`` turns stored integers into observations (``value / divisor``, float32),
    which is how each dlib loader scales its images.
    """

    divisor: ClassVar[float] = 255.0
    packed_bits: ClassVar[bool] = False
    _store: np.ndarray
    _device_stores: dict

    @property
    def _bases(self) -> np.ndarray:
        sizes = np.asarray(self.factor_sizes, dtype=np.int64)
        return np.concatenate([np.cumprod(sizes[::-1])[::-1][1:], [1]]).astype(np.int64)

    def _index(self, all_factors: np.ndarray) -> np.ndarray:
        return np.asarray(all_factors, dtype=np.int64) @ self._bases

    def _raw(self, all_factors: np.ndarray) -> np.ndarray:
        raw = self._store[self._index(all_factors)]
        if self.packed_bits:
            raw = np.unpackbits(raw, axis=-1)[..., None]
        return raw

    def images(self, all_factors: np.ndarray) -> np.ndarray:
        raw = self._raw(all_factors)
        if self.packed_bits:
            return raw * np.uint8(255)
        if raw.dtype == np.uint8 and self.divisor == 255.0:
            return raw
        return np.clip(np.rint(raw * (255.0 / self.divisor)), 0, 255).astype(np.uint8)

    def observations(self, all_factors: np.ndarray) -> np.ndarray:
        raw = self._raw(all_factors)
        # float64 division then rounding to float32 is exactly what dlib's loaders compute
        # (x / 255. in float64, .astype(float32) at sampling time).
        return (raw.astype(np.float64) / self.divisor).astype(np.float32)

    # -- training path: gather on the device that holds the store ------------------------
    def _device_store(self, device: torch.device) -> torch.Tensor:
        import torch

        if device.type == "cpu":
            return torch.from_numpy(self._store)
        if not hasattr(self, "_device_stores"):
            self._device_stores = {}
        key = str(device)
        if key not in self._device_stores:
            self._device_stores[key] = torch.from_numpy(self._store).to(device)
        return self._device_stores[key]

    def training_batch(self, factors: np.ndarray, random_state: np.random.RandomState,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """float32 ``[B, C, H, W]`` in [0, 1]; on a GPU, gathered from a resident integer copy of the store."""
        import torch

        device = torch.device(device)
        idx = torch.from_numpy(self._index(self._all_factors(factors, random_state)))
        store = self._device_store(device)
        raw = store[idx.to(device, non_blocking=True)]
        if self.packed_bits:
            shifts = torch.arange(7, -1, -1, device=device, dtype=torch.uint8)
            bits = (raw.unsqueeze(-1) >> shifts) & 1
            return bits.reshape(raw.shape[0], 1, raw.shape[1], raw.shape[2] * 8).float()
        # Clipped to [0, 1]: a Bernoulli likelihood needs targets there, and SmallNORB's
        # dlib-exact resize overshoots by a few levels near edges (observations() keeps them).
        return raw.permute(0, 3, 1, 2).float().div_(self.divisor).clamp_(0.0, 1.0)
