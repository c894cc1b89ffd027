"""dSprites' exact factor grid, rendered on the fly: no download, deterministic.

Shape 3 (square, ellipse, heart), scale 6 in [0.5, 1], orientation 40 over [0, 2π),
posX and posY 32 each over [0, 1]; 64×64 binary images. Each pixel is tested at its
centre against the shape's implicit equation in the object's frame, in float64, so the
same factors give the same image on every machine.
"""
from __future__ import annotations

import numpy as np

from harness.data.base import GroundTruthData

__all__ = ["DSpritesProcedural"]

_SIZE = 64
_GRID = (np.arange(_SIZE, dtype=np.float64) + 0.5)  # pixel centres
_SCALES = np.linspace(0.5, 1.0, 6)
_ANGLES = np.arange(40) * (2 * np.pi / 40)
_POS = np.linspace(0.0, 1.0, 32)
# Object centre travels over [12, 52] px and a unit-scale object spans ±10 px (±14 px
# rotated), so every sprite stays inside the frame as in dSprites.
_MARGIN, _HALF = 12.0, 10.0


def _inside(shape: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    square = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
    ellipse = u**2 + (v / 0.5) ** 2 <= 1.0
    # The classic heart curve (x² + y² − 1)³ − x² y³ ≤ 0, scaled to about ±1.
    hx, hy = 1.15 * u, -1.15 * v + 0.15
    heart = (hx**2 + hy**2 - 1.0) ** 3 - hx**2 * hy**3 <= 0.0
    return np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))


class DSpritesProcedural(GroundTruthData):
    name = "dsprites_procedural"
    factor_names = ("shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (3, 6, 40, 32, 32)
    observation_shape = (64, 64, 1)

    def images(self, all_factors: np.ndarray) -> np.ndarray:
        f = np.asarray(all_factors, dtype=np.int64)
        shape = f[:, 0, None, None]
        scale = _SCALES[f[:, 1]][:, None, None] * _HALF
        theta = _ANGLES[f[:, 2]][:, None, None]
        cx = (_MARGIN + _POS[f[:, 3]] * (_SIZE - 2 * _MARGIN))[:, None, None]
        cy = (_MARGIN + _POS[f[:, 4]] * (_SIZE - 2 * _MARGIN))[:, None, None]
        dx = _GRID[None, None, :] - cx  # columns: x
        dy = _GRID[None, :, None] - cy  # rows: y
        cos, sin = np.cos(theta), np.sin(theta)
        u = (cos * dx + sin * dy) / scale
        v = (-sin * dx + cos * dy) / scale
        return (_inside(shape, u, v).astype(np.uint8) * 255)[..., None]
