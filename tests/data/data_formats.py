"""Small files in exactly the official formats (same names, keys, dtypes, headers), few objects.

Each writer returns the tiny dataset class that reads what it wrote: the official loader
with only its grid (or NORB's image side) made small.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from gmgbench.harness.data import cars3d, dsprites, mpi3d, shapes3d, smallnorb
from gmgbench.harness.data.files import OFFICIAL_FILES

DSPRITES_SIZES = (1, 3, 2, 3, 2, 2)
SHAPES3D_SIZES = (2, 3, 2, 2, 4, 3)
MPI3D_SIZES = (2, 2, 2, 1, 3, 2, 3)
NORB_SIDE = 8
CARS_OBJECTS = 3


def _rows(sizes) -> np.ndarray:
    """All factor combinations in row-major order, ``[prod(sizes), len(sizes)]``."""
    return np.stack(np.unravel_index(np.arange(int(np.prod(sizes))), sizes), axis=1)


def write_dsprites(root: Path, rng: np.random.RandomState, sizes=DSPRITES_SIZES):
    path = Path(root) / OFFICIAL_FILES["dsprites_full"][0].path
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = _rows(sizes)
    n = len(classes)
    imgs = (rng.rand(n, 64, 64) < 0.3).astype(np.uint8)
    possible = {"color": np.array([1.0]), "shape": np.array([1.0, 2.0, 3.0]), "scale": np.linspace(0.5, 1, 6),
                "orientation": np.linspace(0, 2 * np.pi, 40), "posX": np.linspace(0, 1, 32), "posY": np.linspace(0, 1, 32)}
    names = ("color", "shape", "scale", "orientation", "posX", "posY")
    values = np.stack([possible[k][classes[:, i]] for i, k in enumerate(names)], axis=1)
    metadata = {"date": "April 2017", "description": "Disentanglement test Sprites dataset.", "version": 1,
                "latents_names": names, "latents_possible_values": possible,
                "latents_sizes": np.array(sizes), "author": "lmatthey@google.com", "title": "dSprites dataset"}
    np.savez_compressed(path, imgs=imgs, latents_classes=classes.astype(np.int64),
                        latents_values=values, metadata=np.array(metadata, dtype=object))

    class Tiny(dsprites.DSprites):
        factor_sizes = tuple(sizes)

    return Tiny, path


SHAPES3D_VALUES = (np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
                   np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15))


def write_shapes3d(root: Path, rng: np.random.RandomState, sizes=SHAPES3D_SIZES):
    import h5py

    path = Path(root) / OFFICIAL_FILES["shapes3d"][0].path
    path.parent.mkdir(parents=True, exist_ok=True)
    classes = _rows(sizes)
    images = rng.randint(0, 256, size=(len(classes), 64, 64, 3)).astype(np.uint8)
    labels = np.stack([SHAPES3D_VALUES[i][classes[:, i]] for i in range(6)], axis=1)
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=labels)

    class Tiny(shapes3d.Shapes3D):
        factor_sizes = tuple(sizes)

    return Tiny, path, images, labels


def write_binary_matrix(path: Path, array: np.ndarray, magic: int) -> None:
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    with open(path, "wb") as f:
        f.write(np.array([magic, array.ndim] + dims, dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(array).tobytes())


NORB_BYTE, NORB_INT = 0x1E3D4C55, 0x1E3D4C54


def write_smallnorb(root: Path, rng: np.random.RandomState, side: int = NORB_SIDE):
    """Both splits, every (category, instance, elevation, azimuth, lighting) once, rows shuffled."""
    for chunk, instances in (("5x46789x9x18x6x2x96x96-training", (4, 6, 7, 8, 9)),
                             ("5x01235x9x18x6x2x96x96-testing", (0, 1, 2, 3, 5))):
        rows = _rows((5, 5, 9, 18, 6))
        rows[:, 1] = np.asarray(instances)[rows[:, 1]]
        rows[:, 3] *= 2  # azimuth is stored as 0, 2, ..., 34
        rows = rows[rng.permutation(len(rows))]
        n = len(rows)
        dat = rng.randint(0, 256, size=(n, 2, side, side)).astype(np.uint8)
        base = Path(root) / "small_norb"
        base.mkdir(parents=True, exist_ok=True)
        write_binary_matrix(base / f"smallnorb-{chunk}-dat.mat", dat, NORB_BYTE)
        write_binary_matrix(base / f"smallnorb-{chunk}-cat.mat", rows[:, 0].astype("<i4"), NORB_INT)
        write_binary_matrix(base / f"smallnorb-{chunk}-info.mat", rows[:, 1:].astype("<i4"), NORB_INT)

    class Tiny(smallnorb.SmallNORB):
        image_side = side

    return Tiny


def write_cars3d(root: Path, rng: np.random.RandomState, n_objects: int = CARS_OBJECTS):
    import scipy.io

    folder = Path(root) / "cars"
    folder.mkdir(parents=True, exist_ok=True)
    # Smooth views (a random low-resolution pattern, upsampled) like photographs, plus noise.
    for k in rng.permutation(n_objects):
        low = rng.randint(0, 256, size=(8, 8, 3, 24, 4))
        im = np.repeat(np.repeat(low, 16, axis=0), 16, axis=1)
        im = np.clip(im + rng.randint(-20, 21, size=im.shape), 0, 255).astype(np.uint8)
        mask = (im.max(axis=2) > 40).astype(np.uint8)
        scipy.io.savemat(folder / f"car_{k + 1:03d}_mesh.mat", {"im": im, "mask": mask})

    class Tiny(cars3d.Cars3D):
        factor_sizes = (4, 24, n_objects)

    return Tiny


def write_mpi3d(root: Path, rng: np.random.RandomState, name: str = "mpi3d_toy", sizes=MPI3D_SIZES):
    path = Path(root) / OFFICIAL_FILES[name][0].path
    path.parent.mkdir(parents=True, exist_ok=True)
    images = rng.randint(0, 256, size=(int(np.prod(sizes)), 64, 64, 3)).astype(np.uint8)
    np.savez_compressed(path, images=images)
    base = mpi3d.MPI3DToy if name == "mpi3d_toy" else mpi3d.MPI3DReal

    class Tiny(base):
        factor_sizes = tuple(sizes)

    return Tiny, path
