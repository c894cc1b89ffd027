"""Shapes3D from DeepMind's public ``3dshapes.h5``.

dlib reads an npz that was never published and converts all 480,000 images to float32
(23.6 GB); the h5's rows are in the same row-major factor order, so we keep its uint8
images (1.5 GB) and convert per batch, which gives dlib's values bit for bit.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gmgbench.harness.data.base import ArrayData, DatasetError
from gmgbench.harness.data.files import OFFICIAL_FILES, require

__all__ = ["Shapes3D"]


class Shapes3D(ArrayData):
    name = "shapes3d"
    factor_names = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    factor_sizes = (10, 10, 10, 8, 4, 15)
    observation_shape = (64, 64, 3)
    relpath = OFFICIAL_FILES["shapes3d"][0].path

    def __init__(self, root: str | Path):
        import h5py

        path = require(Path(root) / self.relpath, "file", self.name)
        spec = OFFICIAL_FILES["shapes3d"][0]
        n = self.dataset_size
        try:
            with h5py.File(path, "r") as f:
                for key in ("images", "labels"):
                    if key not in f:
                        raise DatasetError(f"{path}: no dataset {key!r} (has {sorted(f.keys())})")
                images, labels = f["images"], f["labels"]
                if images.shape != (n, 64, 64, 3) or images.dtype != np.uint8:
                    raise DatasetError(f"{path}['images']: shape {images.shape} {images.dtype}, expected {(n, 64, 64, 3)} uint8")
                if labels.shape != (n, 6):
                    raise DatasetError(f"{path}['labels']: shape {labels.shape}, expected {(n, 6)}")
                self._store = np.empty(images.shape, dtype=np.uint8)
                images.read_direct(self._store)
                labels = labels[()]
        except OSError as e:
            raise DatasetError(
                f"{path}: unreadable HDF5 ({e}); the file is truncated or corrupt, expected "
                f"{spec.size:,} bytes with sha256 {spec.sha256}"
            ) from None
        self._check_order(labels, path)

    def _check_order(self, labels: np.ndarray, path: Path) -> None:
        """Rows must be in row-major factor order: label columns sort lexicographically."""
        codes = np.empty(labels.shape, dtype=np.int64)
        for i, size in enumerate(self.factor_sizes):
            values, codes[:, i] = np.unique(labels[:, i], return_inverse=True)
            if len(values) != size:
                raise DatasetError(f"{path}['labels'][:, {i}] ({self.factor_names[i]}): {len(values)} distinct values, expected {size}")
        if not np.array_equal(codes @ self._bases, np.arange(len(codes))):
            raise DatasetError(f"{path}: rows are not in row-major factor order; expected DeepMind's original file")
