"""PNG contact sheets: random samples, then one row per factor sweeping its values."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gmgbench.harness.data.base import GroundTruthData

__all__ = ["sheet", "write_sheet"]


def sheet(data: GroundTruthData, seed: int = 0, columns: int = 10, sample_rows: int = 2) -> np.ndarray:
    """uint8 ``[rows * H, columns * W, 3]``: ``sample_rows`` rows of random samples, then one
    row per factor (all factors, nuisance included) sweeping up to ``columns`` of its values
    evenly, the others held at one random setting."""
    rs = np.random.RandomState(seed)
    rows = [data.images(data._all_factors(data.sample_factors(columns, rs), rs)) for _ in range(sample_rows)]
    base = data._all_factors(data.sample_factors(1, rs), rs)[0]
    for i, size in enumerate(data.factor_sizes):
        values = np.unique(np.linspace(0, size - 1, min(size, columns)).round().astype(np.int64))
        f = np.repeat(base[None], len(values), axis=0)
        f[:, i] = values
        imgs = data.images(f)
        pad = np.zeros((columns - len(values),) + imgs.shape[1:], dtype=np.uint8)
        rows.append(np.concatenate([imgs, pad]))
    grid = np.stack(rows)  # [R, C, H, W, ch]
    if grid.shape[-1] == 1:
        grid = np.repeat(grid, 3, axis=-1)
    r, c, h, w, _ = grid.shape
    # one-pixel grey gutters so that neighbouring images stay distinguishable
    framed = np.full((r, c, h + 1, w + 1, 3), 128, dtype=np.uint8)
    framed[:, :, :h, :w] = grid
    return framed.transpose(0, 2, 1, 3, 4).reshape(r * (h + 1), c * (w + 1), 3)


def write_sheet(data: GroundTruthData, out: str | Path, seed: int = 0, zoom: int = 2) -> Path:
    from PIL import Image

    img = Image.fromarray(sheet(data, seed=seed))
    img = img.resize((img.width * zoom, img.height * zoom), Image.NEAREST)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
