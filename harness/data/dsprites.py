"""dSprites (``dsprites_full``) from DeepMind's npz, as disentanglement_lib reads it.

dlib keeps all six factors of the file (colour has one value) with colour as a nuisance
factor, so sampling replays its RNG calls exactly; observations are the stored 0/1 pixels
as float32. The 3 GB ``imgs`` array is streamed out of the zip and kept bit-packed
(377 MB), so loading never holds the whole uint8 array.
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from gmgbench.harness.data.base import ArrayData, DatasetError
from gmgbench.harness.data.files import OFFICIAL_FILES, require

__all__ = ["DSprites"]

_CHUNK = 16384  # images per streamed read: 64 MB


def _read_npy_header(fp, where: str) -> tuple[tuple[int, ...], np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fp)
        shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(fp)
    except ValueError as e:
        raise DatasetError(f"{where}: not a NumPy array ({e})") from None
    if fortran:
        raise DatasetError(f"{where}: Fortran-ordered array; expected the official C-ordered file")
    return shape, dtype


class DSprites(ArrayData):
    name = "dsprites_full"
    factor_names = ("color", "shape", "scale", "orientation", "posX", "posY")
    factor_sizes = (1, 3, 6, 40, 32, 32)
    latent_factor_indices = (1, 2, 3, 4, 5)
    observation_shape = (64, 64, 1)
    divisor = 1.0
    packed_bits = True
    relpath = OFFICIAL_FILES["dsprites_full"][0].path

    def __init__(self, root: str | Path):
        path = require(Path(root) / self.relpath, "file", self.name)
        expected = (self.dataset_size, 64, 64)
        try:
            with zipfile.ZipFile(path) as zf:
                names = set(zf.namelist())
                for key in ("imgs.npy", "latents_classes.npy"):
                    if key not in names:
                        raise DatasetError(f"{path}: no array {key[:-4]!r} in the npz (has {sorted(names)})")
                self._check_factor_sizes(path)
                with zf.open("imgs.npy") as fp:
                    shape, dtype = _read_npy_header(fp, f"{path}['imgs']")
                    if shape != expected or dtype != np.uint8:
                        raise DatasetError(f"{path}['imgs']: shape {shape} {dtype}, expected {expected} uint8")
                    self._store = self._stream_packed(fp, path)
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as e:
            raise DatasetError(
                f"{path}: unreadable npz ({type(e).__name__}: {e}); the file is truncated or corrupt, "
                f"expected md5 {OFFICIAL_FILES['dsprites_full'][0].md5}"
            ) from None

    def _check_factor_sizes(self, path: Path) -> None:
        # The factor sizes from the numeric ``latents_classes`` array, never from ``metadata``:
        # that entry is a pickled dict, and unpickling a file of unknown origin can run code.
        try:
            with np.load(path, allow_pickle=False) as data:
                classes = data["latents_classes"]
        except ValueError as e:  # an object array where numbers belong
            raise DatasetError(f"{path}['latents_classes']: not a numeric array ({e})") from None
        if classes.ndim != 2 or classes.shape[1] != len(self.factor_sizes) or not np.issubdtype(classes.dtype, np.integer):
            raise DatasetError(f"{path}['latents_classes']: shape {classes.shape} {classes.dtype}, "
                               f"expected (N, {len(self.factor_sizes)}) integers")
        sizes = tuple(int(s) for s in classes.max(axis=0) + 1) if len(classes) else ()
        if sizes != tuple(self.factor_sizes):
            raise DatasetError(f"{path}: latents_classes spans factor sizes {list(sizes)}, expected {list(self.factor_sizes)}")

    def _stream_packed(self, fp, path: Path) -> np.ndarray:
        n = self.dataset_size
        out = np.empty((n, 64, 8), dtype=np.uint8)
        for start in range(0, n, _CHUNK):
            count = min(_CHUNK, n - start)
            buf = fp.read(count * 64 * 64)
            if len(buf) != count * 64 * 64:
                raise DatasetError(f"{path}['imgs']: ends after {start + len(buf) // 4096} of {n} images (truncated)")
            chunk = np.frombuffer(buf, dtype=np.uint8).reshape(count, 64, 64)
            if chunk.max(initial=0) > 1:
                raise DatasetError(f"{path}['imgs']: pixel values above 1; expected dSprites' binary 0/1 images")
            out[start:start + count] = np.packbits(chunk, axis=-1)
        return out

