"""dSprites' exact factor grid, rendered on the fly: no download, deterministic.

Shape 3 (square, ellipse, heart), scale 6 in [0.5, 1], orientation 40 over [0, 2π),
posX and posY 32 each over [0, 1]; 64×64 binary images. The 720 (shape, scale,
orientation) sprites are rasterised once into 32×32 patches by testing each pixel centre
against the shape's implicit equation in float64; position then moves the patch by whole
pixels (one pixel per step, so the sprite centre travels over [16, 47] px). A batch is
therefore a single scatter of precomputed patches: fast, and the same factors give the
same image on every machine.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from gmgbench.harness.data.base import GroundTruthData

__all__ = ["DSpritesProcedural", "sprite_patches"]

_SIZE, _PATCH = 64, 32
_SCALES = np.linspace(0.5, 1.0, 6)
_ANGLES = np.arange(40) * (2 * np.pi / 40)
_HALF = 10.0  # half-extent in px of a unit-scale sprite; rotated squares reach 14.2 < 16


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if shape == 0:
        return (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    if shape == 1:
        return u**2 + (v / 0.5) ** 2 <= 1.0
    # The classic heart curve (x² + y² − 1)³ − x² y³ ≤ 0, scaled to about ±1.
    hx, hy = 1.15 * u, -1.15 * v + 0.15
    return (hx**2 + hy**2 - 1.0) ** 3 - hx**2 * hy**3 <= 0.0


@lru_cache(maxsize=1)
def sprite_patches() -> np.ndarray:
    """uint8 ``[3 * 6 * 40, 32, 32]`` in {0, 255}: every (shape, scale, orientation) sprite."""
    grid = np.arange(_PATCH, dtype=np.float64) + 0.5 - _PATCH / 2  # pixel centres around the patch centre
    dx, dy = grid[None, :], grid[:, None]
    out = np.zeros((3, 6, 40, _PATCH, _PATCH), dtype=np.uint8)
    for shape in range(3):
        for k, scale in enumerate(_SCALES * _HALF):
            for o, theta in enumerate(_ANGLES):
                c, s = np.cos(theta), np.sin(theta)
                u = (c * dx + s * dy) / scale
                v = (-s * dx + c * dy) / scale
                out[shape, k, o] = _inside(shape, u, v) * np.uint8(255)
    out = out.reshape(-1, _PATCH, _PATCH)
    out.setflags(write=False)
    return out


class DSpritesProcedural(GroundTruthData):
    name = "dsprites_procedural"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    observation_shape = (64, 64, 1)

    def images(self, all_factors: np.ndarray) -> np.ndarray:
        f = np.asarray(all_factors, dtype=np.int64)
        n = len(f)
        patches = sprite_patches()[(f[:, 0] * 6 + f[:, 1]) * 40 + f[:, 2]]
        out = np.zeros((n, _SIZE, _SIZE), dtype=np.uint8)
        offs = np.arange(_PATCH)
        rows = (f[:, 4, None] + offs)[:, :, None]  # posY moves rows
        cols = (f[:, 3, None] + offs)[:, None, :]  # posX moves columns
        out[np.arange(n)[:, None, None], rows, cols] = patches
        return out[..., None]
