"""SmallNORB from NYU's binary matrix files, as disentanglement_lib reads them.

The ``.mat`` files are NYU's own format, not MATLAB: int32 magic, int32 ndim, then
max(3, ndim) int32 dimensions, then the data. dlib reads the image matrix as int8 and
hands it to PIL, which takes it as 32-bit integer pixels ("I" mode): the Lanczos resize to
64×64 is then neither rounded to 8 bits nor clipped, so a few pixels near edges fall
slightly outside [0, 255]. We keep those values (int16) so that observations equal dlib's
bit for bit; ``images()`` clips them for display.

Factors: category 5, elevation 9, azimuth 18, lighting 6; instance (10, five per split) is
a nuisance factor resampled per image. The left camera is used.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gmgbench.harness.data.base import ArrayData, DatasetError
from gmgbench.harness.data.files import OFFICIAL_FILES, require

__all__ = ["SmallNORB", "read_binary_matrix", "MAGIC"]

MAGIC = {0x1E3D4C55: np.uint8, 0x1E3D4C54: np.int32, 0x1E3D4C51: np.float32, 0x1E3D4C53: np.float64,
         0x1E3D4C56: np.int16}
_HEADER_MAX = 64


def read_binary_matrix(path: Path, expect_shape: tuple[int, ...] | None = None,
                       expect_dtype: type | None = None) -> np.ndarray:
    """A NORB binary matrix as a read-only memory map; errors name the file and what was expected."""
    size = path.stat().st_size
    head = np.fromfile(path, dtype="<i4", count=min(5, size // 4))
    if len(head) < 2:
        raise DatasetError(f"{path}: {size} bytes, too short for a NORB binary matrix header")
    magic, ndim = int(head[0]), int(head[1])
    if magic not in MAGIC:
        raise DatasetError(f"{path}: header magic {magic:#x} is not a NORB binary matrix "
                           f"(expected one of {', '.join(hex(m) for m in MAGIC)})")
    if not 0 < ndim <= 16:
        raise DatasetError(f"{path}: header says {ndim} dimensions; expected 1..16")
    eff = max(3, ndim)
    dims = tuple(int(d) for d in np.fromfile(path, dtype="<i4", count=eff, offset=8)[:ndim])
    dtype = np.dtype(MAGIC[magic]).newbyteorder("<")
    offset = 8 + 4 * eff
    if expect_dtype is not None and dtype != np.dtype(expect_dtype):
        raise DatasetError(f"{path}: header magic {magic:#x} means {dtype.name} data; expected {np.dtype(expect_dtype).name}")
    if expect_shape is not None and dims != tuple(expect_shape):
        raise DatasetError(f"{path}: header shape {dims}, expected {tuple(expect_shape)}")
    need = offset + int(np.prod(dims)) * dtype.itemsize
    if size != need:
        state = "truncated" if size < need else "has trailing bytes"
        raise DatasetError(f"{path}: {size:,} bytes but its header {dims} {dtype.name} needs {need:,} ({state})")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=dims)


def _resize_like_dlib(images: np.ndarray, side: int = 64) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(images), side, side), dtype=np.int16)
    for i, img in enumerate(images):
        # dlib: int8 array -> PIL "I" image (bytes read as unsigned) -> Lanczos resize.
        pic = Image.fromarray(np.asarray(img, dtype=np.int32))
        out[i] = np.asarray(pic.resize((side, side), Image.LANCZOS))
    return out


class SmallNORB(ArrayData):
    name = "smallnorb"
    factor_names = ("category", "instance", "elevation", "azimuth", "lighting")
    factor_sizes = (5, 10, 9, 18, 6)
    latent_factor_indices = (0, 2, 3, 4)
    observation_shape = (64, 64, 1)
    image_side = 96  # of the files; tests use smaller images in the same format
    rows_per_chunk = 24300

    def __init__(self, root: str | Path):
        specs = OFFICIAL_FILES[self.name]
        paths = [Path(root) / s.path for s in specs]
        missing = [p for p in paths if not p.exists()]
        if missing:
            if len(missing) == len(paths):
                require(paths[0], "file", self.name)
            raise DatasetError(f"{self.name}: missing {len(missing)} of {len(paths)} files: "
                               + ", ".join(str(p) for p in missing) + "; see docs/datasets.md")
        n, s = self.rows_per_chunk, self.image_side
        dats, features = [], []
        for dat, cat, info in (paths[0:3], paths[3:6]):
            dats.append(read_binary_matrix(dat, (n, 2, s, s), np.uint8))
            c = read_binary_matrix(cat, (n,), np.int32)
            f = read_binary_matrix(info, (n, 4), np.int32)
            features.append(np.column_stack((c, f)).astype(np.int64))
        feats = np.concatenate(features)
        feats[:, 3] //= 2  # azimuth is stored as 0, 2, ..., 34
        sizes = np.asarray(self.factor_sizes)
        bad = (feats < 0) | (feats >= sizes)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DatasetError(f"{self.name}: label {self.factor_names[col]}={feats[row, col]} out of range "
                               f"[0, {sizes[col]}) in row {row} of the cat/info files")
        index = feats @ self._bases
        if len(np.unique(index)) != self.dataset_size:
            raise DatasetError(f"{self.name}: the cat/info labels do not cover the {self.dataset_size} factor "
                               f"combinations exactly once; expected the official training and testing files")
        store = np.empty((self.dataset_size, 64, 64, 1), dtype=np.int16)
        # Labels first, resizing (seconds) only once the files are known to be whole.
        store[index, :, :, 0] = np.concatenate([_resize_like_dlib(d[:, 0]) for d in dats])
        self._store = store
