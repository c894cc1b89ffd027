"""disentanglement_lib's dSprites variants: color, noisy and scream dSprites.

Each draws the binary dSprites image of the sampled factors and then, from the same
``RandomState`` and in dlib's order (``data/ground_truth/dsprites.py``), what makes it a
variant; observations are RGB, 64×64×3:

- **color**: one colour per image, ``uniform(0.5, 1, [N, 1, 1, 3])``; the sprite takes that
  colour, the background stays black;
- **noisy**: ``uniform(0, 1, [N, 64, 64, 3])`` noise as background, the sprite white:
  ``min(sprite + noise, 1)``;
- **scream**: per image, in turn, ``randint(0, H − 64)``, ``randint(0, W − 64)`` and
  ``uniform(0, 1, size=3)``: a 64×64 crop of the Scream image, averaged with that colour,
  ``(crop + colour) / 2``, inverted (``1 − x``) at the sprite's pixels. The image is
  ``$DISENTANGLEMENT_LIB_DATA/scream/scream.jpg`` read by Pillow, shrunk with
  ``thumbnail((350, 274))`` and divided by 255, as dlib reads it.

dlib computes in float64 and returns float64 (float32 for scream); we compute the same
float64 values and return them as float32, as every other loader does. The variants are
built on the real dSprites (``color_dsprites`` ...: dlib's) and on the procedural twin
(``color_dsprites_procedural`` ...: no download; scream's background is then a procedural
stand-in image, :func:`procedural_scream`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from gmgbench.harness.data.base import DatasetError
from gmgbench.harness.data.dsprites import DSprites
from gmgbench.harness.data.dsprites_procedural import DSpritesProcedural
from gmgbench.harness.data.files import OFFICIAL_FILES, require

__all__ = ["ColorDSprites", "NoisyDSprites", "ScreamDSprites", "ColorDSpritesProcedural",
           "NoisyDSpritesProcedural", "ScreamDSpritesProcedural", "read_scream", "procedural_scream"]

_DISPLAY_SEED = 0  # images() is for display only; its random colours come from a fixed seed
SCREAM_THUMBNAIL = (350, 274)  # dlib passes (350, 274, 3); Pillow >= 10 takes the 2-tuple


class _Variant:
    """Mixin over a dSprites whose observations are 0.0/1.0 masks ``[N, 64, 64, 1]``."""

    observation_shape = (64, 64, 3)

    def _recolour(self, masks: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
        """float64 ``[N, 64, 64, 3]`` from float32 masks ``[N, 64, 64, 3]``, drawing from ``random_state``."""
        raise NotImplementedError

    def _masks(self, all_factors: np.ndarray) -> np.ndarray:
        """The binary sprites as float32 0.0/1.0 ``[N, 64, 64, 3]`` (dlib's ``np.repeat(..., 3, axis=3)``)."""
        binary = super().images(all_factors) > 0  # type: ignore[misc]  # the base dSprites' images
        return np.repeat(binary.astype(np.float32), 3, axis=3)

    def sample_observations_from_factors(self, factors: np.ndarray, random_state: np.random.RandomState) -> np.ndarray:
        # First the binary sprite (its nuisance factors drawn as dlib draws them), then the variant.
        masks = self._masks(self._all_factors(factors, random_state))  # type: ignore[attr-defined]
        return self._recolour(masks, random_state).astype(np.float32)

    def training_batch(self, factors: np.ndarray, random_state: np.random.RandomState,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """float32 ``[B, 3, 64, 64]``: the observations dlib would draw, in the same RNG order."""
        x = torch.from_numpy(self.sample_observations_from_factors(factors, random_state))
        return x.to(device, non_blocking=True).permute(0, 3, 1, 2)

    def images(self, all_factors: np.ndarray) -> np.ndarray:
        """uint8 RGB for display; the random colours/crops come from a fixed seed."""
        rgb = self._recolour(self._masks(all_factors), np.random.RandomState(_DISPLAY_SEED))
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


class _Color(_Variant):
    variant = "color"

    def _recolour(self, masks, random_state):
        color = random_state.uniform(0.5, 1, [masks.shape[0], 1, 1, 3])
        return masks * color


class _Noisy(_Variant):
    variant = "noisy"

    def _recolour(self, masks, random_state):
        noise = random_state.uniform(0, 1, [masks.shape[0], 64, 64, 3])
        return np.minimum(masks + noise, 1.0)


class _Scream(_Variant):
    variant = "scream"
    scream: np.ndarray  # float64 [H, W, 3] in [0, 1]
    scream_relpath = OFFICIAL_FILES["scream_dsprites"][1].path

    def __init__(self, *root: str | Path):
        """Over dSprites, ``root`` is its data folder, and the Scream image lies under it; over
        the procedural twin, there is no root and the image is :func:`procedural_scream`."""
        # The small file first: a missing image should not cost a 20 s dSprites load.
        self.scream = (read_scream(require(Path(root[0]) / self.scream_relpath, "file", self.name)) if root
                       else procedural_scream())
        super().__init__(*root)

    def _recolour(self, masks, random_state):
        out = np.empty(masks.shape, dtype=np.float64)
        height, width = self.scream.shape[:2]
        for i in range(masks.shape[0]):
            x_crop = random_state.randint(0, height - 64)
            y_crop = random_state.randint(0, width - 64)
            background = (self.scream[x_crop:x_crop + 64, y_crop:y_crop + 64] + random_state.uniform(0, 1, size=3)) / 2.0
            sprite = masks[i] == 1
            background[sprite] = 1 - background[sprite]
            out[i] = background
        return out


def read_scream(path: str | Path) -> np.ndarray:
    """The Scream image as dlib reads it: Pillow, ``thumbnail((350, 274))``, ``/ 255`` (float64)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as f, Image.open(f) as img:
            img.thumbnail(SCREAM_THUMBNAIL)
            scream = np.array(img) * 1.0 / 255.0
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    _check_scream(scream, str(path))
    return scream


def _check_scream(scream: np.ndarray, where: str) -> None:
    if scream.ndim != 3 or scream.shape[2] != 3:
        raise DatasetError(f"{where}: an RGB image is needed, got an array of shape {scream.shape}")
    if scream.shape[0] <= 64 or scream.shape[1] <= 64:
        raise DatasetError(f"{where}: the thumbnail is {scream.shape[0]}×{scream.shape[1]}; more than 64×64 is needed for crops")


@lru_cache(maxsize=1)
def procedural_scream() -> np.ndarray:
    """A stand-in for the Scream thumbnail: 274×222 RGB swirls, uint8 then ``/ 255`` like the real one.

    Smooth bands of colour around two centres, so that crops differ in hue and texture as
    the painting's do; it is not the painting, and numbers on it are not comparable with
    scream_dsprites'.
    """
    yy, xx = np.mgrid[0:274, 0:222].astype(np.float64)
    u, v = xx / 222.0, yy / 274.0
    r1 = np.hypot(u - 0.3, v - 0.35)
    r2 = np.hypot(u - 0.7, v - 0.7)
    swirl = 10.0 * r1 + 3.0 * np.arctan2(v - 0.35, u - 0.3) + 6.0 * np.sin(8.0 * r2)
    rgb = np.stack([0.55 + 0.45 * np.sin(swirl), 0.45 + 0.4 * np.sin(swirl + 2.0 + 3.0 * v),
                    0.4 + 0.4 * np.cos(1.3 * swirl - 4.0 * u)], axis=2)
    img = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    out = img * 1.0 / 255.0
    out.setflags(write=False)
    return out


# The six datasets: each variant over the real dSprites and over its procedural twin, named
# as the registry (harness/data/__init__.py) and dlib name them: ColorDSprites is
# color_dsprites, ColorDSpritesProcedural color_dsprites_procedural, and so on.
for _base, _suffix in ((DSprites, ""), (DSpritesProcedural, "_procedural")):
    for _mixin in (_Color, _Noisy, _Scream):
        _cls = type(f"{_mixin.variant.title()}{_base.__name__}", (_mixin, _base),
                    {"name": f"{_mixin.variant}_dsprites{_suffix}", "__module__": __name__})
        globals()[_cls.__name__] = _cls
del _base, _suffix, _mixin, _cls
