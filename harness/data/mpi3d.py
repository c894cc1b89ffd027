"""MPI3D (toy and real) from the NeurIPS 2019 challenge npz files, as dlib reads them.

``images`` is (N, 64, 64, 3) uint8 in row-major factor order. dlib returns ``images / 255.``
in float64; we return the same values as float32.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from gmgbench.harness.data.base import ArrayData, DatasetError
from gmgbench.harness.data.files import OFFICIAL_FILES, require

__all__ = ["MPI3DToy", "MPI3DReal"]


class _MPI3D(ArrayData):
    factor_names = ("object_color", "object_shape", "object_size", "camera_height",
                    "background_color", "first_dof", "second_dof")
    observation_shape = (64, 64, 3)

    def __init__(self, root: str | Path):
        spec = OFFICIAL_FILES[self.name][0]
        path = require(Path(root) / spec.path, "file", self.name)
        expected = (self.dataset_size, 64, 64, 3)
        try:
            with np.load(path) as data:
                if "images" not in data.files:
                    raise DatasetError(f"{path}: no array 'images' in the npz (has {data.files})")
                images = data["images"]
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as e:
            raise DatasetError(f"{path}: unreadable npz ({type(e).__name__}: {e}); truncated or corrupt, "
                               f"expected md5 {spec.md5}") from None
        if images.shape != expected or images.dtype != np.uint8:
            raise DatasetError(f"{path}['images']: shape {images.shape} {images.dtype}, expected {expected} uint8")
        self._store = images


class MPI3DToy(_MPI3D):
    name = "mpi3d_toy"
    factor_sizes = (4, 4, 2, 3, 3, 40, 40)


class MPI3DReal(_MPI3D):
    name = "mpi3d_real"
    factor_sizes = (6, 6, 2, 3, 3, 40, 40)
