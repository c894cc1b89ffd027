"""Cars3D from Reed et al.'s 183 ``cars/*.mat`` files, as disentanglement_lib reads them.

Each file's ``im`` is (128, 128, 3, 24, 4) uint8 = (H, W, C, azimuth, elevation); dlib
makes each view a 64×64 PIL thumbnail (Lanczos) and numbers objects by their position
in the directory listing. That listing is unordered, so we number the **sorted** list
(dlib on a sorted listing gives the same images).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gmgbench.harness.data.base import ArrayData, DatasetError
from gmgbench.harness.data.files import require

__all__ = ["Cars3D", "resize_view"]


def resize_view(view: np.ndarray) -> np.ndarray:
    """dlib's ``PIL.Image.thumbnail((64, 64), ANTIALIAS)`` of one (128, 128, 3) uint8 view."""
    from PIL import Image

    pic = Image.fromarray(view)
    pic.thumbnail((64, 64), Image.LANCZOS)
    return np.asarray(pic)


class Cars3D(ArrayData):
    name = "cars3d"
    factor_names = ("elevation", "azimuth", "object")
    factor_sizes = (4, 24, 183)
    observation_shape = (64, 64, 3)
    folder = "cars"

    def __init__(self, root: str | Path):
        import scipy.io

        folder = require(Path(root) / self.folder, "folder", self.name)
        files = sorted(f for f in os.listdir(folder) if ".mat" in f)
        n_elev, n_azim, n_obj = self.factor_sizes
        if len(files) != n_obj:
            what = "is empty" if not files else f"has {len(files)} .mat files"
            raise DatasetError(f"{self.name}: {folder} {what}; expected the {n_obj} car_XXX_mesh.mat files "
                               f"of nips2015-analogy-data.tar.gz (its data/cars/ folder)")
        store = np.empty((n_elev, n_azim, n_obj, 64, 64, 3), dtype=np.uint8)
        for obj, name in enumerate(files):
            path = folder / name
            try:
                im = scipy.io.loadmat(path)["im"]
            except KeyError:
                raise DatasetError(f"{path}: no variable 'im'; expected a Cars3D mesh file") from None
            except Exception as e:  # scipy raises several types for a damaged .mat
                raise DatasetError(f"{path}: unreadable .mat file ({type(e).__name__}: {e}); truncated or corrupt") from None
            if im.shape != (128, 128, 3, n_azim, n_elev) or im.dtype != np.uint8:
                raise DatasetError(f"{path}['im']: shape {im.shape} {im.dtype}, expected (128, 128, 3, {n_azim}, {n_elev}) uint8")
            for e in range(n_elev):
                for a in range(n_azim):
                    store[e, a, obj] = resize_view(np.ascontiguousarray(im[:, :, :, a, e]))
        self._store = store.reshape(-1, 64, 64, 3)
